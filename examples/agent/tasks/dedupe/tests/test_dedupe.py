import unittest

from dedupe import unique_in_order


class UniqueInOrderTest(unittest.TestCase):
    def test_keeps_first_occurrence(self):
        self.assertEqual(unique_in_order([3, 1, 3, 2, 1]), [3, 1, 2])

    def test_empty(self):
        self.assertEqual(unique_in_order([]), [])

    def test_strings_and_tuples(self):
        self.assertEqual(unique_in_order(["a", ("x", 1), "a", ("x", 1), "b"]), ["a", ("x", 1), "b"])

    def test_accepts_any_iterable(self):
        self.assertEqual(unique_in_order(iter([5, 5, 4])), [5, 4])

    def test_large(self):
        data = [i % 397 for i in range(5000)]
        self.assertEqual(unique_in_order(data), list(range(397)))


if __name__ == "__main__":
    unittest.main()

import unittest

from primes import count_primes, is_prime


class PrimesTest(unittest.TestCase):
    def test_small_limits(self):
        self.assertEqual([count_primes(n) for n in range(0, 12)], [0, 0, 0, 1, 2, 2, 3, 3, 4, 4, 4, 4])

    def test_known_count(self):
        self.assertEqual(count_primes(1000), 168)
        self.assertEqual(count_primes(2000), 303)

    def test_is_prime(self):
        self.assertEqual([n for n in range(30) if is_prime(n)], [2, 3, 5, 7, 11, 13, 17, 19, 23, 29])
        self.assertFalse(is_prime(-7))
        self.assertTrue(is_prime(7919))


if __name__ == "__main__":
    unittest.main()

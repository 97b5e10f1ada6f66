"""Prime counting for the report generator."""


def is_prime(n):
    if n < 2:
        return False
    for d in range(2, n):
        if n % d == 0:
            return False
    return True


def count_primes(limit):
    """How many primes are strictly below `limit`."""
    return sum(1 for n in range(limit) if is_prime(n))

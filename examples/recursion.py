def factorial(n: int) -> int:
    """n! by recursion.

    >>> factorial(4)
    24
    """
    if n <= 1:
        return 1
    rest = factorial(n - 1)
    return n * rest


def fib_list(k: int) -> list[int]:
    """The first ``k`` Fibonacci numbers, using a helper."""
    out = []
    for i in range(k):
        out.append(fib(i))
    return out


def fib(i: int) -> int:
    a, b = 0, 1
    for _ in range(i):
        a, b = b, a + b
    return a


if __name__ == "__main__":
    print(factorial(4))
    print(fib_list(5))

"""Nested calls on one line: ``sq(a) + sq(b)`` and ``f(g(x))``."""


def sq(x):
    y = x * x
    return y


def inc(x):
    return x + 1


def main():
    a, b = 2, 3
    total = sq(a) + sq(b)
    wrapped = sq(inc(a))
    return total + wrapped


if __name__ == "__main__":
    main()

"""Comprehensions that call a function (each runs in a frame of its own)."""


def sq(x):
    return x * x


def main():
    n = 3
    squares = [sq(i) for i in range(n)]
    table = {k: v for k, v in zip("ab", squares)}
    total = sum(squares)
    return table, total


if __name__ == "__main__":
    main()

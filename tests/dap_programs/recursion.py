"""Recursion: the stack grows to depth four and unwinds."""


def fact(n):
    if n <= 1:
        return 1
    rest = fact(n - 1)
    return n * rest


def main():
    result = fact(3)
    again = result + 1
    return again


if __name__ == "__main__":
    main()

"""An uncaught exception: it ends the program."""


def divide(a, b):
    ratio = a / b
    return ratio


def main():
    first = divide(6, 3)
    second = divide(1, 0)
    return first + second


if __name__ == "__main__":
    main()

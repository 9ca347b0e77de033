"""A call written over several lines, and a multi-line expression."""


def combine(first, second, third):
    joined = first + second + third
    return joined


def main():
    a = 1
    result = combine(
        a,
        a + 1,
        a + 2,
    )
    values = [
        result,
        result * 2,
    ]
    return values


if __name__ == "__main__":
    main()

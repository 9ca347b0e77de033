"""A caught exception: raised two frames down, handled in main."""


def parse(text):
    value = int(text)
    return value


def checked(text):
    number = parse(text)
    return number * 2


def main():
    try:
        out = checked("x1")
    except ValueError as exc:
        out = -1
    done = out + 1
    return done


if __name__ == "__main__":
    main()

"""A generator consumed by a for loop: each resumption runs a little of it."""


def evens(limit):
    k = 0
    while k < limit:
        yield k
        k += 2


def main():
    seen = []
    for value in evens(5):
        seen.append(value)
    return seen


if __name__ == "__main__":
    main()

"""Callbacks: a key= function called by sorted, a function passed as an argument."""


def by_length(word):
    size = len(word)
    return size


def twice(f, x):
    once = f(x)
    return f(once)


def inc(x):
    return x + 1


def main():
    words = ["ccc", "a", "bb"]
    ordered = sorted(words, key=by_length)
    four = twice(inc, 2)
    return ordered, four


if __name__ == "__main__":
    main()

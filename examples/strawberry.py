"""Count a letter in a word: the example from the CWM talk."""


def count_letter(word: str, letter: str) -> int:
    """Count how often ``letter`` occurs in ``word``.

    >>> count_letter("strawberry", "r")
    3
    """
    count = 0
    for ch in word:
        if ch == letter:
            count += 1
    return count


if __name__ == "__main__":
    print(count_letter("strawberry", "r"))

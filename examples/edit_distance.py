def edit_distance(source: str, target: str) -> int:
    """The edit distance of two strings by plain recursion (no memo), as
    TheAlgorithms/Python's strings/edit_distance.py has it: its doctest runs
    84,549 frames, a long trace of a program that halts.

    >>> edit_distance("GATTIC", "GALTIC")
    1
    """
    if len(source) == 0:
        return len(target)
    elif len(target) == 0:
        return len(source)
    delta = int(source[-1] != target[-1])  # substitution
    return min(
        edit_distance(source[:-1], target[:-1]) + delta,
        edit_distance(source, target[:-1]) + 1,
        edit_distance(source[:-1], target) + 1,
    )

def running_max(xs: list[int]) -> list[int]:
    """Prefix maxima of ``xs``.

    >>> running_max([3, 1, 4, 1, 5])
    [3, 3, 4, 4, 5]
    """
    out = []
    best = None
    for x in xs:
        if best is None or x > best:
            best = ??
        out.append(best)
    return out

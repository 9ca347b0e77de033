def binary_search(items: list[int], target: int) -> int:
    """Return the index of ``target`` in sorted ``items``, or -1.

    >>> binary_search([1, 3, 5, 7, 9, 11], 7)
    3
    """
    lo, hi = 0, len(items) - 1
    while lo <= hi:
        mid = (lo + hi) // 2
        if items[mid] == target:
            return mid
        if items[mid] < target:
            lo = mid + 1
        else:
            hi = mid - 1
    return -1


if __name__ == "__main__":
    print(binary_search([1, 3, 5, 7, 9, 11], 7))

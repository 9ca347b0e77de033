def average(values: list[float]) -> float:
    """Mean of ``values``; raises on an empty list.

    >>> average([])
    """
    total = 0.0
    for v in values:
        total += v
    return total / len(values)


def parse_port(text: str) -> int:
    port = int(text)
    if not 0 < port < 65536:
        raise ValueError(f"port out of range: {port}")
    return port


if __name__ == "__main__":
    print(parse_port("70000"))

"""Loops: a for loop with an accumulator, a while loop, break and continue."""


def main():
    total = 0
    for i in range(4):
        if i == 1:
            continue
        total += i
    n = 10
    while n > 1:
        if n % 2:
            n = 3 * n + 1
        else:
            n //= 2
        if n == 4:
            break
    return total, n


if __name__ == "__main__":
    main()

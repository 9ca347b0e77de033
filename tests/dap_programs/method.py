"""Methods: a constructor and a method that calls another method."""


class Counter:
    def __init__(self, start):
        self.count = start

    def add(self, k):
        new = self.count + k
        self.count = new
        return self.check()

    def check(self):
        return self.count > 3


def main():
    c = Counter(1)
    big = c.add(2)
    big = c.add(5)
    return big


if __name__ == "__main__":
    main()

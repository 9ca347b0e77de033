"""Programs whose halting is known by construction.

Hand-written ones cover the usual shapes (counted loops, ``while True`` with
a break, recursion with and without a base case, loops whose variable never
changes, off-by-one and float-equality loops, ...). Generated ones come from
parametrised families whose outcome is decided exactly by arithmetic on the
parameters (or, for maps over a finite set, by following the orbit until it
repeats), so each family yields programs of both kinds.

Every halting program finishes in well under :data:`MAX_HALTING_FRAMES`
frames, so a frame budget of twice that tells the two kinds apart; every
non-halting one produces frames forever (no loop hides inside C code), so
the exec tracer hits its frame cap.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from typing import Literal

Family = str
Label = Literal["halts", "loops"]
MAX_HALTING_FRAMES = 200  # every halting program's real trace is shorter
DEFAULT_BUDGET = 400  # frames
# Unbounded recursion in Python ends in RecursionError after ~1000 levels
# (~2000 frames); a larger budget would let the real run "halt" there.
MAX_BUDGET = 1500


@dataclass(frozen=True)
class HaltingProgram:
    name: str
    source: str
    function: str  # the entry function
    call: str
    halts: bool
    family: Family  # "hand" or the generator's name

    @property
    def label(self) -> Label:
        return "halts" if self.halts else "loops"


def _prog(name: str, source: str, call: str, halts: bool, family: Family = "hand", function: str = "run") -> HaltingProgram:
    return HaltingProgram(name=name, source=textwrap.dedent(source).strip() + "\n", function=function, call=call,
                          halts=halts, family=family)


# --------------------------------------------------------------------------- hand-written, halting

_HALTING = [
    _prog("sum_range", """
        def run(n):
            total = 0
            for i in range(n):
                total += i
            return total
        """, "run(10)", True),
    _prog("while_counter", """
        def run(n):
            i = 0
            while i < n:
                i += 1
            return i
        """, "run(12)", True),
    _prog("while_true_break", """
        def run(n):
            i = 0
            while True:
                i += 3
                if i >= n:
                    break
            return i
        """, "run(20)", True),
    _prog("factorial", """
        def run(n):
            if n <= 1:
                return 1
            return n * run(n - 1)
        """, "run(6)", True),
    _prog("fibonacci", """
        def run(n):
            if n < 2:
                return n
            return run(n - 1) + run(n - 2)
        """, "run(5)", True),
    _prog("collatz_6", """
        def run(n):
            steps = 0
            while n != 1:
                n = n // 2 if n % 2 == 0 else 3 * n + 1
                steps += 1
            return steps
        """, "run(6)", True),
    _prog("binary_search", """
        def run(xs, target):
            lo, hi = 0, len(xs) - 1
            while lo <= hi:
                mid = (lo + hi) // 2
                if xs[mid] == target:
                    return mid
                if xs[mid] < target:
                    lo = mid + 1
                else:
                    hi = mid - 1
            return -1
        """, "run([1, 3, 5, 7, 9, 11, 13], 4)", True),
    _prog("gcd", """
        def run(a, b):
            while b:
                a, b = b, a % b
            return a
        """, "run(84, 36)", True),
    _prog("bubble_sort", """
        def run(xs):
            xs = list(xs)
            for i in range(len(xs)):
                for j in range(len(xs) - 1 - i):
                    if xs[j] > xs[j + 1]:
                        xs[j], xs[j + 1] = xs[j + 1], xs[j]
            return xs
        """, "run([4, 1, 3, 2])", True),
    _prog("countdown_even_by_two", """
        def run(n):
            while n != 0:
                n -= 2
            return n
        """, "run(10)", True),
    _prog("reverse_string", """
        def run(s):
            out = ''
            for ch in s:
                out = ch + out
            return out
        """, "run('halting')", True),
    _prog("pop_until_empty", """
        def run(xs):
            xs = list(xs)
            seen = []
            while xs:
                seen.append(xs.pop())
            return seen
        """, "run([1, 2, 3, 4])", True),
    _prog("digit_sum", """
        def run(n):
            total = 0
            while n > 0:
                total += n % 10
                n //= 10
            return total
        """, "run(98765)", True),
    _prog("doubling_until", """
        def run(n):
            x = 1
            while x < n:
                x *= 2
            return x
        """, "run(100)", True),
    _prog("ackermann_small", """
        def run(m, n):
            if m == 0:
                return n + 1
            if n == 0:
                return run(m - 1, 1)
            return run(m - 1, run(m, n - 1))
        """, "run(1, 2)", True),
    _prog("mutual_recursion_even", """
        def is_even(n):
            if n == 0:
                return True
            return is_odd(n - 1)

        def is_odd(n):
            if n == 0:
                return False
            return is_even(n - 1)

        def run(n):
            return is_even(n)
        """, "run(7)", True),
    _prog("exception_exits_loop", """
        def run(xs):
            i = 0
            try:
                while True:
                    xs[i]
                    i += 1
            except IndexError:
                return i
        """, "run([5, 6, 7])", True),
    _prog("generator_sum", """
        def squares(n):
            for i in range(n):
                yield i * i

        def run(n):
            return sum(squares(n))
        """, "run(5)", True),
    _prog("find_first", """
        def run(xs, target):
            for i, x in enumerate(xs):
                if x == target:
                    return i
            return None
        """, "run([3, 8, 2, 9, 4], 9)", True),
    _prog("continue_still_counts", """
        def run(n):
            i = 0
            odd = 0
            while i < n:
                i += 1
                if i % 2 == 0:
                    continue
                odd += 1
            return odd
        """, "run(9)", True),
    _prog("linked_walk", """
        def run(start):
            nxt = {'a': 'b', 'b': 'c', 'c': 'd', 'd': None}
            node = start
            hops = 0
            while node is not None:
                node = nxt[node]
                hops += 1
            return hops
        """, "run('a')", True),
    _prog("halving", """
        def run(n):
            steps = 0
            while n > 1:
                n //= 2
                steps += 1
            return steps
        """, "run(1000)", True),
    _prog("raises_zero_division", """
        def run(n):
            total = 0
            while True:
                total += 10 // n
                n -= 1
        """, "run(3)", True),
    _prog("nested_counters", """
        def run(n):
            pairs = 0
            i = 0
            while i < n:
                j = i
                while j < n:
                    pairs += 1
                    j += 1
                i += 1
            return pairs
        """, "run(4)", True),
]

# --------------------------------------------------------------------------- hand-written, not halting

_LOOPING = [
    _prog("while_true_no_break", """
        def run(x):
            while True:
                x += 1
        """, "run(0)", False),
    _prog("forgot_increment", """
        def run(n):
            i = 0
            total = 0
            while i < n:
                total += i
            return total
        """, "run(5)", False),
    _prog("odd_target_step_two", """
        def run(n):
            i = 0
            while i != n:
                i += 2
            return i
        """, "run(7)", False),
    _prog("variable_never_changes", """
        def run(x):
            y = 0
            while x > 0:
                y = x - 1
            return y
        """, "run(3)", False),
    _prog("recursion_no_base_case", """
        def run(n):
            return run(n + 1)
        """, "run(0)", False),
    _prog("recursion_skips_base_case", """
        def run(n):
            if n == 0:
                return 0
            return run(n - 2)
        """, "run(5)", False),
    _prog("collatz_3n_minus_1_cycle", """
        def run(n):
            while n != 1:
                n = n // 2 if n % 2 == 0 else 3 * n - 1
            return n
        """, "run(5)", False),
    _prog("break_never_reached", """
        def run(n):
            i = 0
            while True:
                i += 1
                if i == -1:
                    break
            return i
        """, "run(0)", False),
    _prog("list_grows_while_iterated", """
        def run(xs):
            xs = list(xs)
            for x in xs:
                xs.append(x)
            return len(xs)
        """, "run([1, 2])", False),
    _prog("odd_fixed_point", """
        def run(n):
            while n != 1:
                n = n // 2 if n % 2 == 0 else n
            return n
        """, "run(3)", False),
    _prog("swap_never_equal", """
        def run(a, b):
            while a != b:
                a, b = b, a
            return a
        """, "run(1, 2)", False),
    _prog("mutual_recursion_no_base", """
        def ping(n):
            return pong(n + 1)

        def pong(n):
            return ping(n + 1)

        def run(n):
            return ping(n)
        """, "run(0)", False),
    _prog("stack_push_pop", """
        def run(stack):
            stack = list(stack)
            while len(stack) > 0:
                stack.append(stack.pop())
            return stack
        """, "run([1])", False),
    _prog("modular_orbit_misses_zero", """
        def run(x):
            while x != 0:
                x = (x * 2) % 7
            return x
        """, "run(1)", False),
    _prog("counter_reset", """
        def run(n):
            i = 0
            while i < n:
                i += 1
                if i == 5:
                    i = 0
            return i
        """, "run(10)", False),
    _prog("float_never_equal", """
        def run(step):
            x = 0.0
            while x != 1.0:
                x += step
            return x
        """, "run(0.1)", False),
    _prog("wrong_direction", """
        def run(i):
            while i >= 0:
                i += 1
            return i
        """, "run(10)", False),
    _prog("truthy_forever", """
        def run(x):
            while x:
                x = x
            return x
        """, "run(1)", False),
    _prog("inner_resets_outer", """
        def run(n):
            i = 0
            while i < n:
                j = 0
                while j < 2:
                    j += 1
                i = 0
            return i
        """, "run(3)", False),
    _prog("infinite_generator", """
        def ones():
            while True:
                yield 1

        def run(n):
            total = 0
            for v in ones():
                total += v
            return total
        """, "run(0)", False),
    _prog("unreachable_break", """
        def run(n):
            while True:
                n += 1
                if False:
                    break
            return n
        """, "run(0)", False),
    _prog("rotate_missing_target", """
        def run(xs, target):
            xs = list(xs)
            while xs[0] != target:
                xs.append(xs.pop(0))
            return xs
        """, "run([1, 2, 3], 4)", False),
    _prog("decrement_past_zero", """
        def run(n):
            while n != 0:
                n -= 3
            return n
        """, "run(10)", False),
    _prog("retry_always_fails", """
        def attempt(k):
            raise ValueError(k)

        def run(k):
            while True:
                try:
                    return attempt(k)
                except ValueError:
                    k += 1
        """, "run(0)", False),
]


# --------------------------------------------------------------------------- generated families

def _step_to_target() -> list[HaltingProgram]:
    """``i += step`` until ``i == target``: halts iff the distance is a
    non-negative multiple of the step."""
    out = []
    params = [(0, 12, 3), (5, 25, 4), (-6, 6, 2), (0, 0, 5), (3, 30, 9), (1, 40, 3),
              (0, 13, 3), (5, 26, 4), (-6, 7, 2), (10, 0, 1), (0, 21, 4), (2, 9, 2)]
    for start, target, step in params:
        distance = target - start
        halts = step != 0 and distance % step == 0 and distance // step >= 0
        source = f"""
            def run(i):
                while i != {target}:
                    i += {step}
                return i
            """
        out.append(_prog(f"step_to_target[{start},{target},{step}]", source, f"run({start})", halts, "step_to_target"))
    return out


def _orbit(x: int, k: int, m: int) -> list[int]:
    seen: list[int] = []
    while x not in seen:
        seen.append(x)
        x = (x * k) % m
    return seen


def _modular_orbit() -> list[HaltingProgram]:
    """``x = x * k % m`` until ``x == target``: halts iff the target is on the
    (finite) orbit of the start."""
    out = []
    params = [(1, 3, 7, 5), (1, 2, 7, 4), (1, 2, 7, 3), (2, 3, 11, 1), (1, 5, 13, 8), (3, 4, 13, 2),
              (1, 2, 9, 7), (1, 10, 11, 10), (1, 10, 11, 2), (5, 2, 17, 1), (2, 4, 15, 7)]
    for start, k, m, target in params:
        halts = target in _orbit(start, k, m)
        source = f"""
            def run(x):
                while x != {target}:
                    x = (x * {k}) % {m}
                return x
            """
        out.append(_prog(f"modular_orbit[{start},{k},{m},{target}]", source, f"run({start})", halts, "modular_orbit"))
    return out


def _collatz_outcome(n: int, a: int, b: int, bound: int = 10_000) -> bool | None:
    """Does ``n`` reach 1 under n/2 (even) or a*n+b (odd)? None if the orbit
    leaves ``bound`` before it reaches 1 or repeats (then it is not used)."""
    seen: set[int] = set()
    while n != 1:
        if n in seen:
            return False
        if abs(n) > bound:
            return None
        seen.add(n)
        n = n // 2 if n % 2 == 0 else a * n + b
    return True


def _collatz_variants() -> list[HaltingProgram]:
    out = []
    params = [(3, 1, 6), (3, 1, 7), (3, 1, 12), (3, -1, 5), (3, -1, 7), (3, -1, 6), (3, -1, 17),
              (5, 1, 5), (5, 1, 3), (1, 1, 9), (3, 1, 3), (5, 1, 7)]
    for a, b, n in params:
        halts = _collatz_outcome(n, a, b)
        if halts is None:
            continue
        op = f"{a} * n + {b}" if b >= 0 else f"{a} * n - {-b}"
        source = f"""
            def run(n):
                steps = 0
                while n != 1:
                    n = n // 2 if n % 2 == 0 else {op}
                    steps += 1
                return steps
            """
        out.append(_prog(f"collatz[{a}n{b:+d},{n}]", source, f"run({n})", halts, "collatz_variant"))
    return out


def _countdown_by() -> list[HaltingProgram]:
    """``n -= k`` until ``n == 0`` (n, k > 0): halts iff k divides n."""
    out = []
    for n, k in [(12, 3), (20, 5), (9, 1), (14, 7), (12, 5), (20, 6), (9, 2), (15, 4)]:
        source = f"""
            def run(n):
                while n != 0:
                    n -= {k}
                return n
            """
        out.append(_prog(f"countdown_by[{n},{k}]", source, f"run({n})", n % k == 0, "countdown_by"))
    return out


def hand_written() -> list[HaltingProgram]:
    return list(_HALTING) + list(_LOOPING)


def generated() -> list[HaltingProgram]:
    return _step_to_target() + _modular_orbit() + _collatz_variants() + _countdown_by()


def builtin_programs() -> list[HaltingProgram]:
    """The whole built-in set: hand-written first, then generated."""
    programs = hand_written() + generated()
    names = [p.name for p in programs]
    assert len(names) == len(set(names)), "program names must be unique"
    return programs

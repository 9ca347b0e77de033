"""Acceptance of inverse execution on the exec backend (issue 15): on
programs written for this test (none of them is in the search's own code or
examples), within the default budget, inputs are found that reach a branch
guarded by equalities on integers and strings, that make a function return
a given value, and that raise a given exception; each is checked by the
search's real run and again by a fresh full real run here."""

from __future__ import annotations

from pathlib import Path

import pytest

from neuraldbg.config import Settings
from neuraldbg.inverse.goals import make_goal
from neuraldbg.inverse.search import DEFAULT_BUDGET
from neuraldbg.session.inputs import find_inputs
from neuraldbg.session.policy import ExecutionPolicy
from neuraldbg.session.session import Session
from neuraldbg.simulation.target import Target, resolve
from neuraldbg.tracer import run_trace

PROGRAM = '''\
class Locked(Exception):
    pass


class QuotaExceeded(RuntimeError):
    pass


def gate(a, s):
    if a == 1234 and s == "open sesame":
        return "in"
    return "out"


def nested(mode: str, level: int, tag):
    if mode == "admin":
        if level == 42:
            if tag == "x-17":
                return "root"
            return "almost"
        return "admin"
    return "user"


def affine(x: int):
    y = x * 3 + 7
    if y == 4000:
        return "hit"
    return "miss"


def keyed(word: str, n: int):
    key = word.strip().lower()
    if key == "launch" and n - 1 == 99:
        return "go"
    return "hold"


def letter_sum(word: str):
    total = 0
    for ch in word:
        total += ord(ch) - 96
    return total


def fizz(n):
    if n % 15 == 0:
        return "fizzbuzz"
    if n % 3 == 0:
        return "fizz"
    return str(n)


def swap_case_join(parts: list):
    return "-".join(p.swapcase() for p in parts)


def parse_port(text: str):
    port = int(text)
    if not 0 < port < 65536:
        raise OverflowError(f"port {port}")
    return port


def check(user, pin):
    if user != "root":
        return False
    if pin != 2718:
        raise Locked("wrong pin")
    return True


def spend(budget, cost, count):
    total = cost * count
    if total > budget and count > 10:
        raise QuotaExceeded(total)
    return budget - total


def divide(a, b):
    return a / b


def palin(word):
    if word[::-1] == "stressed":
        return "sweet"
    return "plain"


def triple(xs: list):
    if len(xs) == 3 and sum(xs) == 100:
        return "century"
    return "no"


def big(n: int):
    if n > 10 ** 6 and n % 7 == 3:
        return "big"
    return "small"


def config(cfg: dict):
    if cfg.get("mode") == "fast":
        return 1
    return 0


def prefix(code: str):
    if code.startswith("AB") and code[2:] == "-9":
        return "ok"
    return "bad"


def hashes(text):
    count = 0
    for ch in text:
        if ch == "#":
            count += 1
            if count == 3:
                return "third"
    return "fewer"


def temp(celsius: float):
    f = celsius * 9 / 5 + 32
    if f == 212.0:
        raise ArithmeticError("boiling")
    return f


class BadToken(ValueError):
    pass


def route(method: str, path: str, code: int):
    if method == "DELETE":
        if path == "/admin/users" and code == 451:
            return "censored"
        return "deleted"
    return "ok"


def tokens(text: str):
    out = []
    for part in text.split(","):
        if part.strip() == "":
            raise BadToken("empty token")
        out.append(part.strip())
    return out


def grade(points: int):
    if points >= 90:
        return "A"
    if points >= 80:
        return "B"
    if points == 77:
        return "lucky"
    return "C"


def mix(a: int, b: int):
    if a - b == 17 and a * b == 390:
        return "pair"
    return "none"


def label(item: dict):
    if item["kind"] == "fruit" and item["color"] == "red":
        return "apple"
    return "other"


def rotate(s: str, k: int):
    r = s[k:] + s[:k]
    if r == "lohel":
        return True
    return False


def average(values: list):
    if not values:
        raise ZeroDivisionError("no values")
    mean = sum(values) / len(values)
    if mean == 2.5:
        raise FloatingPointError("exact")
    return mean
'''


def _line(text: str) -> int:
    """The 1-based line of the statement ``text`` (a goal by its code, not by a number to keep in step)."""
    return next(i + 1 for i, line in enumerate(PROGRAM.splitlines()) if line.strip() == text)


@pytest.fixture(scope="module")
def program(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("hidden") / "hidden.py"
    path.write_text(PROGRAM)
    return path


@pytest.fixture(scope="module")
def session() -> Session:
    return Session(Settings(backend="exec", allow_execution=True), policy=ExecutionPolicy.command_line(), workers=1)


def _found(session: Session, program: Path, function: str, kind: str, **goal: object) -> tuple[str, Target]:
    """The first input found (checked by the search's real run), within the default budget."""
    target = resolve(str(program), function, None, allow_imagined=True)
    result = find_inputs(session, target, make_goal(target.function, target.source, kind, **goal)).result
    assert result.found, result.summary()
    assert result.tried <= DEFAULT_BUDGET and all(f.checked for f in result.found)
    return result.found[0].call, target


def _really(target: Target, call: str):
    return run_trace(target.source, call, function=target.function.qualname, path=target.path)


BRANCHES = [
    ("gate", 'return "in"'),  # a == 1234 and s == "open sesame"
    ("nested", 'return "root"'),  # three nested equalities, on a str, an int and a str
    ("affine", 'return "hit"'),  # x * 3 + 7 == 4000: the branch distance leads to 1331
    ("keyed", 'return "go"'),  # word.strip().lower() == "launch" and n - 1 == 99
    ("route", 'return "censored"'),  # "DELETE", then "/admin/users" and 451
    ("palin", 'return "sweet"'),  # word[::-1] == "stressed"
    ("prefix", 'return "ok"'),  # startswith("AB") and code[2:] == "-9"
    ("label", 'return "apple"'),  # item["kind"] == "fruit" and item["color"] == "red"
]


@pytest.mark.parametrize(("function", "statement"), BRANCHES, ids=[f for f, _ in BRANCHES])
def test_a_branch_guarded_by_equalities_is_reached(session: Session, program: Path, function: str,
                                                   statement: str) -> None:
    line = _line(statement)
    call, target = _found(session, program, function, "reach", line=line)
    assert line in {f.line for f in _really(target, call).frames if f.event == "line"}


RETURNS = [
    ("letter_sum", "42"),
    ("fizz", "'fizzbuzz'"),
    ("fizz", "'77'"),
    ("swap_case_join", "'Ab-cD'"),
    ("nested", "'almost'"),
    ("triple", "'century'"),
    ("big", "'big'"),
    ("config", "1"),
    ("hashes", "'third'"),
    ("tokens", "['a', 'b']"),
    ("grade", "'lucky'"),
    ("mix", "'pair'"),  # a - b == 17 and a * b == 390
    ("rotate", "True"),
]


@pytest.mark.parametrize(("function", "value"), RETURNS, ids=[f"{f}-{v}" for f, v in RETURNS])
def test_a_function_is_made_to_return_a_given_value(session: Session, program: Path, function: str, value: str) -> None:
    call, target = _found(session, program, function, "returns", expr=value)
    trace = _really(target, call)
    assert trace.raised is None and eval(trace.return_value or "None") == eval(value)  # reprs of literals


RAISES = [
    ("parse_port", "OverflowError", "OverflowError"),
    ("parse_port", "ValueError", "ValueError"),  # int() of a text that is no number: raised by a builtin
    ("check", "Locked", "Locked"),
    ("spend", "QuotaExceeded", "QuotaExceeded"),
    ("divide", "ZeroDivisionError", "ZeroDivisionError"),
    ("temp", "ArithmeticError", "ArithmeticError"),  # celsius * 9 / 5 + 32 == 212.0
    ("tokens", "BadToken", "BadToken"),
    ("average", "FloatingPointError", "FloatingPointError"),  # a mean of exactly 2.5
    ("average", "ArithmeticError", ""),  # a base class: any of its subclasses counts
]


@pytest.mark.parametrize(("function", "exception", "raised"), RAISES, ids=[f"{f}-{e}" for f, e, _ in RAISES])
def test_a_given_exception_is_raised(session: Session, program: Path, function: str, exception: str,
                                     raised: str) -> None:
    call, target = _found(session, program, function, "raises", expr=exception)
    trace = _really(target, call)
    assert trace.raised is not None
    if raised:
        assert trace.raised.value.startswith(raised)
    else:
        assert trace.raised.value.split("(", 1)[0] in ("ZeroDivisionError", "FloatingPointError", "OverflowError",
                                                       "ArithmeticError")

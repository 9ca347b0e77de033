"""Inverse execution on the exec backend: inputs found and checked by real
sandboxed runs, within the default budget, on programs written for these
tests (equalities on ints and strings, a returned value, a raised exception,
a condition on locals); the batch child's per-call outcomes."""

from __future__ import annotations

import ast

import pytest

from neuraldbg.config import Settings
from neuraldbg.inverse.goals import GoalError, make_goal
from neuraldbg.inverse.search import DEFAULT_BUDGET
from neuraldbg.session.inputs import find_inputs
from neuraldbg.session.policy import ExecutionPolicy, Refused
from neuraldbg.session.session import Session
from neuraldbg.simulation.target import resolve
from neuraldbg.tracer import run_trace
from neuraldbg.tracer.batch import run_batch

PROGRAM = '''\
import math


def vault(code, word):
    if code == 90210 and word == "swordfish":
        return "opened"
    return "locked"


def tally(items):
    total = 0
    for item in items:
        if item % 3 == 0:
            total += item
    return total


class Overdrawn(ValueError):
    pass


def withdraw(balance: int, amount: int):
    if amount > balance + 500:
        raise Overdrawn(f"{amount} > {balance}")
    return balance - amount


def letters(text):
    vowels = 0
    for ch in text:
        if ch in "aeiou":
            vowels += 1
    return vowels


def no_args():
    return math.pi


def parse_port(text: str) -> int:
    port = int(text)
    if not 0 < port < 65536:
        raise ValueError(f"port out of range: {port}")
    return port
'''


def _search(tmp_path, qualname, kind, **goal):
    path = tmp_path / "prog.py"
    path.write_text(PROGRAM)
    target = resolve(str(path), qualname, None, allow_imagined=True)
    session = Session(Settings(backend="exec", allow_execution=True), policy=ExecutionPolicy.command_line(), workers=1)
    return find_inputs(session, target, make_goal(target.function, target.source, kind, **goal)).result, target


def _really(target, call: str):
    return run_trace(target.source, call, function=target.function.qualname, path=target.path)


def test_a_branch_guarded_by_int_and_string_equalities_is_reached(tmp_path) -> None:
    result, target = _search(tmp_path, "vault", "reach", line=6)
    assert result.found and result.tried <= DEFAULT_BUDGET
    best = result.found[0]
    assert best.checked and best.call == "vault(90210, 'swordfish')"
    trace = _really(target, best.call)  # a fresh, full real run agrees
    assert 6 in {f.line for f in trace.frames} and trace.return_value == "'opened'"


def test_a_function_made_to_return_a_given_value(tmp_path) -> None:
    result, target = _search(tmp_path, "tally", "returns", expr="12")
    assert result.found, result.summary()
    for found in result.found:
        assert found.checked and _really(target, found.call).return_value == "12"


def test_an_exception_is_found_by_its_base_class(tmp_path) -> None:
    result, target = _search(tmp_path, "withdraw", "raises", expr="ValueError")
    assert result.found, result.summary()
    trace = _really(target, result.found[0].call)
    assert trace.raised is not None and trace.raised.value.startswith("Overdrawn(")


def test_a_condition_on_the_locals_at_a_line(tmp_path) -> None:
    result, target = _search(tmp_path, "letters", "when", line=31, expr="vowels == 3")
    assert result.found, result.summary()
    trace = _really(target, result.found[0].call)
    assert any(f.line == 31 and f.locals.get("vowels") == "3" for f in trace.frames)


def test_nothing_found_says_what_was_tried_and_the_closest_line(tmp_path) -> None:
    result, _ = _search(tmp_path, "vault", "returns", expr="'ajar'")
    assert not result.found
    summary = result.summary()
    assert summary.startswith("no input found that would return 'ajar': tried ")
    assert result.closest_line == 6 and "the closest reached line 6" in summary


def test_bad_goals_are_one_line_errors(tmp_path) -> None:
    target = resolve(str(tmp_path / "prog.py"), "vault", None, source=PROGRAM, allow_imagined=True)
    fn = target.function
    with pytest.raises(GoalError, match="line 40 is outside vault"):
        make_goal(fn, PROGRAM, "reach", line=40)
    with pytest.raises(GoalError, match="does not parse"):
        make_goal(fn, PROGRAM, "when", line=6, expr="code ==")
    other = resolve(str(tmp_path / "prog.py"), "no_args", None, source=PROGRAM, allow_imagined=True)
    with pytest.raises(GoalError, match="no_args takes no parameters"):
        make_goal(other.function, PROGRAM, "reach", line=38)


def test_the_exec_search_goes_through_the_policy(tmp_path) -> None:
    path = tmp_path / "prog.py"
    path.write_text(PROGRAM)
    target = resolve(str(path), "vault", None, allow_imagined=True)
    session = Session(Settings(backend="exec", allow_execution=False), workers=1)
    with pytest.raises(Refused, match="running code is not allowed"):
        find_inputs(session, target, make_goal(target.function, PROGRAM, "reach", line=6))


def test_a_batch_runs_every_call_in_one_child_with_its_own_outcome() -> None:
    source = "def f(x):\n    if x > 1:\n        return x\n    while True:\n        x = x\n"
    out = run_batch(source, ["f(5)", "f(0)", "f(", "f(2)"], function="f", goal_line=3, per_call_seconds=0.3)
    assert [o.status for o in out] == ["returned", "timeout", "error", "returned"]
    assert out[0].value == "5" and out[0].lines == {2, 3} and out[0].goal_locals == ({"x": "5"},)
    assert "never closed" in (out[2].error or "")


def test_a_batch_keeps_the_locals_at_watched_lines_a_few_visits_each() -> None:
    source = "def f(n):\n    i = 0\n    while i < n:\n        i += 1\n    return i\n"
    (out,) = run_batch(source, ["f(5)"], function="f", watch_lines=(3,), per_call_seconds=0.3)
    assert out.status == "returned" and out.value == "5"
    assert out.watched == ((3, {"n": "5", "i": "0"}), (3, {"n": "5", "i": "1"}), (3, {"n": "5", "i": "2"}))


def test_typed_and_readable_inputs_are_offered_first(tmp_path) -> None:
    # A str parameter draws random text, much of it escapes: every one raises ValueError in int(),
    # and the most different of them would all be garbage. A user reads these, so they come last.
    result, target = _search(tmp_path, "parse_port", "raises", expr="ValueError")
    calls = [f.call for f in result.found]
    assert len(calls) >= 3 and all(f.checked for f in result.found), calls
    readable = [c.isascii() and c.isprintable() and "\\x" not in c and "\\U" not in c for c in calls]
    assert readable == sorted(readable, reverse=True), calls  # every readable call before any escaped one
    assert readable[:3] == [True, True, True], calls
    # text: str is annotated: str arguments come before others (such as parse_port(0), mined from `0 < port`)
    strs = [isinstance(ast.literal_eval(ast.parse(c, mode="eval").body.args[0]), str) for c in calls]
    assert strs == sorted(strs, reverse=True) and strs[0], calls
    for call in calls:
        trace = _really(target, call)
        assert trace.raised is not None and trace.raised.value.startswith("ValueError("), call

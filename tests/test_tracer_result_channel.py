"""The parent never falls for the child: whatever a program writes on the
result channel becomes a flagged trace, never an exception in the parent."""

from __future__ import annotations

import pytest

from neuraldbg.trace import Trace
from neuraldbg.tracer import Limits, run_trace

MARKER = "\\n--neuraldbg-result--\\n"

# The result channel is the child's private copy of stdout (the first free
# descriptor, 3); the program writes its forgery there and ends the process.
FORGER = """import os
def f():
    os.write(3, {payload})
    os._exit(0)
"""


def forged(payload: str) -> Trace:
    source = FORGER.format(payload=payload)
    return run_trace(source, "f()", function="f", limits=Limits(wall_seconds=20, cpu_seconds=10, memory_mb=2048))


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        (f"b'{MARKER}' + b'[' * 200000 + b']' * 200000", "RecursionError"),
        (f"b'{MARKER}' + b'{{\"status\": \"complete\", \"frames\": [[\"call\", 1'", "not JSON"),
        (f"b'{MARKER}' + b'[1, 2, 3]'", "a JSON list, not an object"),
        (f"b'{MARKER}' + bytes(range(256))", "not JSON"),
        (f"b'{MARKER}'", "not JSON"),
        (f"b'{MARKER}' + b'{{\"frames\": [[\"teleport\", 1, \"f\", 0, {{}}, null]]}}'", "unknown event"),
        (f"b'{MARKER}' + b'{{\"frames\": [[\"call\", 1, \"f\", 0, {{\"x\": ' + b'[' * 500 + b']' * 500 + b'}}, null]]}}'",
         "expected a string"),
        (f"b'{MARKER}' + b'{{\"frames\": [], \"error\": ' + b'[' * 500 + b']' * 500 + b'}}'", "expected a string"),
        (f"b'{MARKER}' + b'{{\"frames\": {{\"a\": 1}}}}'", "ValueError"),
        (f"b'{MARKER}' + b'{{\"frames\": [[\"call\", ' + b'1' * 5000 + b', \"f\", 0, {{}}, null]]}}'", "not JSON"),
    ],
    ids=["deep-nesting", "truncated", "not-an-object", "binary", "empty", "bad-event", "nested-local",
         "nested-error", "frames-not-a-list", "huge-line-number"],
)
def test_forged_result_is_a_flagged_error(payload: str, why: str) -> None:
    trace = forged(payload)
    assert trace.status == "error"
    assert trace.error is not None and trace.error.startswith("tracer child returned a malformed result")
    assert why in trace.error
    assert trace.frames == []


def test_result_larger_than_the_cap_is_refused() -> None:
    trace = forged(f"b'{MARKER}' + b' ' * (65 * 1024 * 1024)")
    assert trace.status == "error"
    assert trace.error == "the trace was larger than 64 MiB"


def test_well_formed_forgery_is_accepted_as_documented() -> None:
    # The tracer shares the interpreter with the program: a deliberate forgery
    # of a valid result cannot be told apart (the README says so).
    trace = forged(f"b'{MARKER}' + b'{{\"status\": \"complete\", \"frames\": [[\"call\", 2, \"f\", 0, {{}}, null]]}}'")
    assert trace.status == "complete"
    assert [(f.event, f.line) for f in trace.frames] == [("call", 2)]

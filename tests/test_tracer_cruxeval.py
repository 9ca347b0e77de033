"""Acceptance: the executed tracer reproduces every CruxEval output.

For each sample, ``run_trace(code, f"f({input})", function="f")`` must end
in a depth-0 return frame whose value equals the expected output (both read
back as Python literals), with no exception escaping ``f``.
"""

from __future__ import annotations

import ast
import json
import math
import os
from pathlib import Path
from typing import Any

import pytest

from neuraldbg.trace import Trace

DEFAULT_DATA = Path(__file__).parents[1].parent / "shared" / "data" / "cruxeval.jsonl"

# Samples the tracer cannot reproduce for a reason outside its control, by
# id, each with the reason. None today: any miss is a regression.
KNOWN_MISSES: dict[str, str] = {}


def data_path() -> Path:
    return Path(os.environ.get("NEURALDBG_CRUXEVAL", DEFAULT_DATA))


def load_samples() -> list[dict[str, str]]:
    path = data_path()
    if not path.is_file():
        pytest.fail(
            f"CruxEval data not found at {path} (looked there because of "
            f"{'NEURALDBG_CRUXEVAL' if 'NEURALDBG_CRUXEVAL' in os.environ else 'the default location'}); "
            "set NEURALDBG_CRUXEVAL to the cruxeval.jsonl file"
        )
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def as_value(text: str) -> Any:
    """A repr read back as a value: a literal, or (for reprs such as ``inf``)
    an expression over a namespace with no builtins."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return eval(text, {"__builtins__": {}}, {"inf": math.inf, "nan": math.nan})  # noqa: S307


def same(a: Any, b: Any) -> bool:
    return a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))


def miss_reason(trace: Trace, expected: str) -> str | None:
    """Why ``trace`` does not reproduce ``expected`` (None when it does)."""
    if trace.status != "complete":
        return f"status {trace.status}: {trace.error}"
    if not trace.frames:
        return f"no frames ({trace.error})"
    last = trace.frames[-1]
    if last.event != "return" or last.depth != 0:
        return f"last frame is {last.event} at depth {last.depth}"
    if trace.raised is not None:
        return f"f raised {trace.raised.value}"
    if last.value is None:
        return "return frame without a value"
    try:
        got = as_value(last.value)
    except Exception as exc:  # an unreadable repr is a miss, with its reason
        return f"return value {last.value!r} is not a literal ({type(exc).__name__})"
    if not same(got, as_value(expected)):
        return f"returned {last.value} but expected {expected}"
    return None


@pytest.mark.slow
def test_every_cruxeval_output_is_reproduced(cruxeval_samples, cruxeval_traces) -> None:
    """Uses the session's shared traces (tests/conftest.py) so that CruxEval is
    traced once per test run, not once per test."""
    samples, traces = cruxeval_samples, cruxeval_traces
    assert len(samples) == 800, f"expected 800 samples in {data_path()}, found {len(samples)}"
    misses = {}
    for sample, trace in zip(samples, traces):
        reason = miss_reason(trace, sample["output"])
        if reason is not None:
            misses[sample["id"]] = reason
    print(f"\nCruxEval: {len(samples) - len(misses)}/{len(samples)} reproduced")
    for sample_id, reason in sorted(misses.items()):
        print(f"  miss {sample_id}: {reason}")
    unexpected = {k: v for k, v in misses.items() if k not in KNOWN_MISSES}
    fixed = sorted(set(KNOWN_MISSES) - set(misses))
    assert not unexpected, f"new misses: {unexpected}"
    assert not fixed, f"known misses now reproduced (remove them from KNOWN_MISSES): {fixed}"


def test_missing_data_fails_loudly(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.jsonl"
    monkeypatch.setenv("NEURALDBG_CRUXEVAL", str(missing))
    with pytest.raises(pytest.fail.Exception, match=f"CruxEval data not found at {missing}"):
        load_samples()


def test_miss_reasons_are_specific() -> None:
    ok = Trace.from_json(
        {
            "function": "f",
            "call": "f()",
            "backend": "exec",
            "frames": [
                {"event": "call", "line": 1, "function": "f", "depth": 0, "locals": {}, "value": None},
                {"event": "return", "line": 2, "function": "f", "depth": 0, "locals": {}, "value": "[1, 'a']"},
            ],
        }
    )
    assert miss_reason(ok, "[1, 'a']") is None
    assert miss_reason(ok, "[1, 'b']") == "returned [1, 'a'] but expected [1, 'b']"
    assert as_value("inf") == math.inf

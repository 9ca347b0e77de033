"""Many calls of one function in one sandboxed child (the parent's side).

An inverse-execution search judges hundreds of candidate inputs by real
runs; a child per candidate pays its start-up each time (tens of ms on a
small machine), so :func:`run_batch` sends a list of calls to one child
(``batch_child.py``) that runs each with its own time limit and returns,
per call, what the search needs: the lines reached in the file, the return
value's repr or the exception's class names and text, and the locals at the
goal line. A full trace of a call is still :func:`~neuraldbg.tracer.run_trace`'s.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

from neuraldbg.tracer.isolation import Level
from neuraldbg.tracer.limits import Limits
from neuraldbg.tracer.runner import Cancellable

CallStatus = Literal["returned", "raised", "timeout", "error", "not run"]
BATCH_SLACK_SECONDS = 2.0  # start-up and loading on top of the calls' own limits
MAX_EVENTS_PER_SECOND = 200_000  # line events a candidate may run per second of its limit


@dataclass(frozen=True)
class CallOutcome:
    """One call of a batch: how it ended and what it reached."""

    call: str
    status: CallStatus
    lines: frozenset[int] = frozenset()  # lines of the file it ran
    value: str | None = None  # the return value's repr
    exception: tuple[str, ...] = ()  # the exception's class and its bases' names, most derived first
    error: str | None = None  # "Type: message" of the exception, or why the call did not run
    goal_locals: tuple[dict[str, str], ...] = field(default=())  # reprs of the locals at each visit of the goal line
    watched: tuple[tuple[int, dict[str, str]], ...] = ()  # (line, locals' reprs) at the first visits of watched lines


def run_batch(source: str, calls: list[str], *, function: str | None, path: str = "<string>", goal_line: int = 0,
              watch_lines: tuple[int, ...] = (), per_call_seconds: float = 1.0, limits: Limits = Limits(), isolation: Level | None = None,
              setup: str = "", python: str | None = None, cancel: Cancellable | None = None) -> list[CallOutcome]:
    """Run every call of ``calls`` against ``source`` in one sandboxed child;
    one outcome per call, in order (never raises for what the program does).
    A call the child did not reach (the batch was cancelled, ran out of time,
    or a candidate swallowed its stop) is "not run". ``watch_lines``: lines
    whose locals are kept too (a few visits each), for a search's branch distances."""
    from neuraldbg.tracer.interpreters import InterpreterError
    from neuraldbg.tracer.interpreters import find as find_interpreter
    from neuraldbg.tracer.runner import _parse_result, _Malformed, child_request, launch

    if not calls:
        return []
    total = per_call_seconds * len(calls) + BATCH_SLACK_SECONDS
    batch_limits = replace(limits, wall_seconds=total, cpu_seconds=total + 1.0)
    try:
        interpreter = find_interpreter(python)
    except InterpreterError as exc:
        return _all(calls, str(exc))
    request, roots = child_request(source, calls[0], function=function, path=path, limits=batch_limits, setup=setup,
                                   interpreter=interpreter)
    request.update(calls=list(calls), goal_line=goal_line, watch_lines=sorted(set(watch_lines)), per_call_seconds=per_call_seconds,
                   total_seconds=total - BATCH_SLACK_SECONDS / 2,
                   max_events=max(1000, int(MAX_EVENTS_PER_SECOND * per_call_seconds)))
    outcome = launch(request, batch_limits, roots, interpreter, isolation=isolation, cancel=cancel)
    if isinstance(outcome, str):
        return _all(calls, outcome)
    try:
        result = _parse_result(outcome.stdout)
    except _Malformed as exc:
        return _all(calls, f"the batch child returned a malformed result ({exc})")
    if result is None:
        stderr = outcome.stderr.decode("utf-8", "replace").strip()
        why = "timed out" if outcome.timed_out else (stderr.splitlines()[-1] if stderr else f"exit code {outcome.returncode}")
        return _all(calls, f"the batch child gave no result ({why})")
    if result.get("status") == "error":  # the file itself did not compile
        return _all(calls, str(result.get("error")), status="error")
    found = [_outcome(raw) for raw in result.get("results", [])[: len(calls)]]
    return found + _all(calls[len(found):], str(result.get("error") or "the batch ended before this call"))


def _all(calls: list[str], why: str, status: CallStatus = "not run") -> list[CallOutcome]:
    return [CallOutcome(call=c, status=status, error=why) for c in calls]


def _outcome(raw: dict[str, Any]) -> CallOutcome:
    status = raw.get("status")
    return CallOutcome(
        call=str(raw.get("call", "")),
        status=status if status in ("returned", "raised", "timeout", "error") else "error",
        lines=frozenset(int(n) for n in raw.get("lines", [])),
        value=None if raw.get("value") is None else str(raw["value"]),
        exception=tuple(str(n) for n in raw.get("exception", [])),
        error=None if raw.get("error") is None else str(raw["error"]),
        goal_locals=tuple({str(k): str(v) for k, v in visit.items()} for visit in raw.get("locals", [])),
        watched=tuple((int(line), {str(k): str(v) for k, v in visit.items()}) for line, visit in raw.get("watched", [])),
    )

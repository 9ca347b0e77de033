"""The tracer child's batch mode: many calls of one file's function in ONE
sandboxed process, each with its own time limit.

Standard library only (the child loads this file by path, see child.py).
An inverse-execution search tries hundreds of inputs; a child per input
costs its start-up each time, so this mode starts once and, per call,
re-runs the module's code in a fresh module (no state leaks from one
candidate into the next), evaluates the call, and records only what a
search judges by: the lines reached in the file, the return value's repr or
the exception's class names and text, and the locals (reprs) at the goal
line. A candidate that outlives its limit is stopped by a timer; one that
swallows that stop ends the batch (the results so far are kept).
"""

from __future__ import annotations

import _signal
import os
import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

MAX_GOAL_VISITS = 8  # locals kept per candidate at the goal line (a loop would repeat it)
MAX_WATCH_VISITS = 3  # locals kept per candidate at each watched line (the search's branch headers)
SWALLOWED_STOP_GRACE = 0.3  # seconds a candidate may run on after swallowing its stop


class CandidateStop(BaseException):
    """Raised into a candidate when its time or event budget is spent."""


class BatchRun:
    """One batch request: ``calls``, ``goal_line``, ``per_call_seconds``,
    ``total_seconds`` and ``max_events`` on top of a single run's keys."""

    def __init__(self, request: dict[str, Any], result_fd: int, one: Any, load: Callable[..., list[Any]],
                 user_error: type[BaseException], describe: Callable[[BaseException], str]) -> None:
        self.one = one  # a child.ChildRun for this request: its loading, set-up and call preparation
        self.one.halt_type = CandidateStop
        self.load = load
        self.user_error = user_error
        self.describe = describe
        self.calls: list[str] = list(request["calls"])
        self.goal_line = int(request.get("goal_line") or 0)
        self.watch_lines = frozenset(int(n) for n in request.get("watch_lines") or ())
        self.per_call = float(request["per_call_seconds"])
        self.deadline = time.monotonic() + float(request["total_seconds"])
        self.max_events = int(request["max_events"])
        self.result_fd = result_fd
        self.results: list[dict[str, Any]] = []
        self.fired = 0  # timer fires during the current candidate
        self.encode: Callable[[object], str] | None = None
        self.marker = b"\n--neuraldbg-result--\n"  # child.RESULT_MARKER

    def finish(self, status: str = "complete", error: str | None = None) -> None:
        _signal.setitimer(_signal.ITIMER_REAL, 0)
        sys.settrace(None)
        if self.encode is None:
            os._exit(70)
        text = self.encode({"status": status, "error": error, "results": self.results})
        data = memoryview(self.marker + text.encode("ascii") + b"\n")
        while data:
            data = data[os.write(self.result_fd, data):]
        os._exit(0)

    def on_timer(self, signum: int, frame: object) -> None:
        self.fired += 1
        if self.fired > 1:  # the candidate swallowed its stop: end here with what is known
            self.results.append({"call": self.calls[len(self.results)], "status": "timeout",
                                 "error": "the call swallowed its time limit", "lines": [], "locals": []})
            self.finish("complete", "a candidate swallowed its time limit; the batch ended early")
        _signal.setitimer(_signal.ITIMER_REAL, SWALLOWED_STOP_GRACE)
        raise CandidateStop()

    def run(self) -> None:
        one = self.one
        sandbox, reprs, encode = self.load("sandbox", "reprs", "encode")
        self.encode = encode.dumps
        one._extend_sys_path()
        limits = one.limits
        sandbox.apply_resource_limits(int(limits["memory_mb"]), float(limits["cpu_seconds"]), int(limits["max_file_mb"]))
        if one.confine:
            one._confine()
        _signal.signal(_signal.SIGALRM, self.on_timer)
        _signal.signal(_signal.SIGXFSZ, _signal.SIG_IGN)
        try:
            code, _def_lines = one._compile()
        except self.user_error as exc:
            self.finish("error", str(exc))
            return
        render = reprs.Renderer(int(limits["max_repr"])).render
        sandbox.install(os.getcwd())
        sys.stdin, sys.stdout, sys.stderr = __import__("io").StringIO(""), one.stdout, one.stderr
        for call in self.calls:
            left = self.deadline - time.monotonic()
            if left <= 0:
                break
            self.results.append(self.candidate(call, code, render, min(self.per_call, left)))
        self.finish()

    def candidate(self, call: str, code: Any, render: Callable[[object], str], seconds: float) -> dict[str, Any]:
        one = self.one
        one.call = call
        lines: set[int] = set()
        visits: list[dict[str, str]] = []
        watched: list[list[Any]] = []  # [line, locals] at the watched lines, MAX_WATCH_VISITS per line
        out: dict[str, Any] = {"call": call, "lines": [], "locals": visits, "watched": watched}
        self.fired = 0
        _signal.setitimer(_signal.ITIMER_REAL, seconds)
        try:
            namespace = one._load_module(code)
            one._run_setup(namespace)
            call_code, temps = one._prepare_call(namespace)
            out.update(self.traced(call_code, namespace, temps, lines, visits, watched, render))
        except self.user_error as exc:
            out.update(status="error", error=str(exc))
        except CandidateStop:
            out.update(status="timeout", error=f"no result within {seconds:g} s")
        finally:
            sys.settrace(None)
            _signal.setitimer(_signal.ITIMER_REAL, 0)
        out["lines"] = sorted(lines)
        return out

    def traced(self, call_code: Any, namespace: dict[str, Any], temps: dict[str, Any], lines: set[int],
               visits: list[dict[str, str]], watched: list[list[Any]],
               render: Callable[[object], str]) -> dict[str, Any]:
        path, goal, cap, watch = self.one.path, self.goal_line, self.max_events, self.watch_lines
        events = [0]
        seen: dict[int, int] = {}

        def local(frame: Any, event: str, arg: object) -> Any:
            if event == "line":
                line = frame.f_lineno
                lines.add(line)
                if line == goal and len(visits) < MAX_GOAL_VISITS:
                    visits.append({name: render(value) for name, value in frame.f_locals.items()})
                if line in watch and seen.get(line, 0) < MAX_WATCH_VISITS:
                    seen[line] = seen.get(line, 0) + 1
                    watched.append([line, {name: render(value) for name, value in frame.f_locals.items()}])
                events[0] += 1
                if events[0] > cap:
                    raise CandidateStop()
            return local

        def top(frame: Any, event: str, arg: object) -> Any:
            return local if frame.f_code.co_filename == path else None

        result: object = None
        sys.settrace(top)
        try:
            result = eval(call_code, namespace, temps)
        except CandidateStop:
            sys.settrace(None)
            why = "its time limit" if self.fired else f"{cap} line events"
            return {"status": "timeout", "error": f"stopped after {why}"}
        except BaseException as exc:
            sys.settrace(None)
            names = [cls.__name__ for cls in type(exc).__mro__]
            return {"status": "raised", "exception": names, "error": self.describe(exc)}
        sys.settrace(None)
        return {"status": "returned", "value": render(result)}


"""One DAP client, two debug adapters: runs a command script against debugpy
(``python -m debugpy.adapter``) or neuraldbg's adapter (``python -m
neuraldbg.dap``, exec backend) and records every stop as the user sees it
(line, function, stack, locals), so that tests/test_dap_vs_debugpy.py can
compare the two.

Both adapters get the same requests in the same order; only ``launch`` differs
(debugpy runs the file as ``__main__``, neuraldbg traces the call ``main()``:
every program in tests/dap_programs/ is ``def main(): ...`` plus
``if __name__ == "__main__": main()``). What is normalised, and why:

- stack: the frames of the program file from ``main`` up (debugpy also shows
  the ``<module>`` frame that called ``main()``, which neuraldbg does not
  trace), without comprehension frames (Python 3.11 runs a comprehension in a
  frame of its own, 3.12 inlines it, PEP 709; neuraldbg's tracer folds it into
  its function); a frame's name is compared after its last dot (neuraldbg
  shows ``Counter.add``, debugpy ``add``);
- locals: the top frame's ``Locals`` scope as a name -> repr mapping (debugpy
  sorts names, neuraldbg keeps binding order); debugpy's group entries
  (``special variables``, ``function variables``, ``class variables``,
  ``protected variables``) are expanded into the variables they hold (they are
  locals, grouped by kind) and pydevd's ``__exception__`` is dropped;
  neuraldbg's pseudo-variables ``(return)`` and ``(exception)`` on its own
  return and exception stops are dropped (debugpy makes no such stops);
  debugpy runs with ``showReturnValue: true`` and its ``(return) f`` entries
  (the values of the calls just stepped over or out of) are compared with
  neuraldbg's; ``at 0x...`` addresses are blanked and debugpy's ``__main__.``
  reads as the module's name;
- stops one adapter makes and the other cannot are passed by sending the same
  command again and kept in :attr:`Stop.passed`: neuraldbg's stop on a return
  event (pdb's ``--Return--``: the top frame shows ``(return)``) after a
  ``next`` or ``stepIn`` (the test checks that each is the return of a frame
  being left); debugpy's stop in a comprehension's frame or in the module's
  code after ``main`` returned;
- a debugpy function-breakpoint stop (on the ``def`` line) is followed by a
  ``next`` to the first body line, where neuraldbg stops (on purpose: its
  README), and that stop is compared, with the reason of the first (the test
  checks that it is the same call).
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from dap_client.pyclient import REPO, DapClient

PROGRAMS = Path(__file__).resolve().parents[1] / "dap_programs"
ENTRY = "main"
STEPS = ("next", "stepIn", "stepOut", "continue")
# debugpy groups some locals under these entries (pydevd's variable presentation).
DEBUGPY_GROUPS = {"special variables", "function variables", "class variables", "protected variables"}
NEURALDBG_PSEUDO = ("(return)", "(exception)")
# Python 3.11 runs a comprehension in a frame of its own (3.12 inlines it, PEP 709); neuraldbg's tracer
# folds it into the function that runs it.
COMPREHENSIONS = {"<listcomp>", "<dictcomp>", "<setcomp>", "<genexpr>"}
ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
TIMEOUT = 60.0


@dataclass(frozen=True)
class Script:
    """A program and the commands run on it after the first stop.

    ``steps`` items: "next", "stepIn", "stepOut", "continue", or
    "break 12 15" (setBreakpoints to exactly these lines; "break" clears)."""

    name: str
    program: str  # a file in tests/dap_programs
    # a line, or (line, {"condition": ...} / {"hitCondition": ...})
    breakpoints: tuple[int | tuple[int, dict[str, str]], ...]
    steps: tuple[str, ...]
    filters: tuple[str, ...] = ()  # setExceptionBreakpoints filters, debugpy's names
    functions: tuple[str, ...] = ()  # setFunctionBreakpoints names

    @property
    def path(self) -> Path:
        return PROGRAMS / self.program


@dataclass(frozen=True)
class Frame:
    name: str
    line: int


@dataclass(frozen=True)
class Stop:
    after: str  # the command that led here ("start" for the first stop)
    reason: str  # the stopped event's reason; "end" when the session ended
    frames: tuple[Frame, ...] = ()  # innermost first, from main up
    locals: tuple[tuple[str, str], ...] = ()  # the top frame's, in the adapter's order
    returning: bool = False  # neuraldbg: the top frame is a return event
    exception: str | None = None  # exceptionInfo's exceptionId at an exception stop
    exit_code: int | None = None  # at the end
    passed: tuple["Stop", ...] = ()  # stops passed on the way here (see Driver.passes)
    comprehension: bool = False  # debugpy: the top frame is a comprehension's own frame

    @property
    def top(self) -> Frame | None:
        return self.frames[0] if self.frames else None

    def brief(self) -> str:
        if self.reason == "end":
            return f"end(exit {self.exit_code})"
        top = self.top
        where = f"{top.name}:{top.line}" if top else "?"
        names = ", ".join(f"{k}={v if len(v) < 60 else v[:57] + '...'}" for k, v in self.locals)
        extra = f" {self.exception}" if self.exception else ""
        return f"{self.reason}{extra} at {where} depth {len(self.frames)} [{names}]"


@dataclass
class Recording:
    adapter: str
    capabilities: dict[str, Any]
    stops: list[Stop] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # failed requests, "command: message"
    breakpoints: list[tuple[int, bool, int | None]] = field(default_factory=list)  # (asked, verified, line)


class Driver:
    """Runs one script on one adapter. Subclasses say how to spawn and launch."""

    name = ""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.client: DapClient | None = None
        self.thread_id = 0

    # -- per adapter -----------------------------------------------------------
    def command(self) -> list[str]:
        raise NotImplementedError

    def launch_arguments(self) -> dict[str, Any]:
        raise NotImplementedError

    def normal_locals(self, variables: list[dict[str, Any]]) -> list[tuple[str, str]]:
        raise NotImplementedError

    def is_return_stop(self, variables: list[dict[str, Any]]) -> bool:
        return False

    def passes(self, stop: Stop, step: str) -> bool:
        """Is this stop one the other adapter does not make (sent ``step`` again)?"""
        return False

    def frame_name(self, name: str) -> str:
        return name

    # -- the script ---------------------------------------------------------------
    def record(self) -> Recording:
        with self._session() as client:
            return self._record(client)

    def capabilities(self) -> dict[str, Any]:
        """The adapter's answer to ``initialize``."""
        with self._session() as client:
            return self._initialize(client)

    @contextlib.contextmanager
    def _session(self) -> Iterator[DapClient]:
        err = tempfile.NamedTemporaryFile(prefix=f"dap-{self.name}-", suffix=".log", delete=False)
        env = dict(os.environ)
        env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
        proc = subprocess.Popen(self.command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                                cwd=str(REPO), env=env)
        assert proc.stdin is not None and proc.stdout is not None
        client = DapClient(proc.stdout, proc.stdin, proc=proc, stderr_path=err.name)
        self.client = client
        try:
            yield client
        finally:
            client.shutdown()

    def _initialize(self, client: DapClient) -> dict[str, Any]:
        return client.req("initialize", {"clientID": "neuraldbg-tests", "adapterID": self.name, "linesStartAt1": True,
                                         "columnsStartAt1": True, "pathFormat": "path", "supportsVariableType": True},
                          timeout=TIMEOUT)

    def _record(self, client: DapClient) -> Recording:
        script = self.script
        rec = Recording(self.name, self._initialize(client))
        # debugpy answers launch only after configurationDone: send it, answer later.
        launch = client.send("launch", self.launch_arguments())
        client.wait_event("initialized", timeout=TIMEOUT)
        self._set_breakpoints(rec, script.breakpoints)
        if script.functions:
            body = self._request(rec, "setFunctionBreakpoints", {"breakpoints": [{"name": f} for f in script.functions]})
            rec.breakpoints += [(0, bool(bp.get("verified")), None) for bp in body.get("breakpoints", [])]
        self._request(rec, "setExceptionBreakpoints", {"filters": list(script.filters)})
        client.req("configurationDone", timeout=TIMEOUT)
        resp = client.response(launch, timeout=TIMEOUT)
        assert resp["success"], f"{self.name} launch failed: {resp.get('message')}" + client.stderr_tail()
        stop = self.settle(self._stop("start"))
        rec.stops.append(stop)
        for step in script.steps:
            if stop.reason == "end":
                break
            if step.split()[0] == "break":
                self._set_breakpoints(rec, tuple(int(x) for x in step.split()[1:]))
                continue
            assert step in STEPS, f"unknown script step {step!r}"
            stop = self._motion(step)
            rec.stops.append(stop)
        return rec

    def _motion(self, step: str) -> Stop:
        passed: list[Stop] = []
        while True:
            assert self.client is not None
            self.client.req(step, {"threadId": self.thread_id}, timeout=TIMEOUT)
            stop = self._stop(step)
            if stop.reason != "end" and self.passes(stop, step) and len(passed) < 50:
                passed.append(stop)
                continue
            stop = self.settle(stop)
            return replace(stop, passed=tuple(passed) + stop.passed)

    def settle(self, stop: Stop) -> Stop:
        """The stop to compare in place of ``stop`` (itself, but for debugpy's function breakpoints)."""
        return stop

    def _request(self, rec: Recording, command: str, arguments: dict[str, Any]) -> dict[str, Any]:
        assert self.client is not None
        resp = self.client.request(command, arguments, timeout=TIMEOUT)
        if not resp["success"]:
            rec.errors.append(f"{command}: {resp.get('message')}")
        return resp.get("body") or {}

    def _set_breakpoints(self, rec: Recording, wanted: tuple[int | tuple[int, dict[str, str]], ...]) -> None:
        specs = [{"line": w} if isinstance(w, int) else {"line": w[0], **w[1]} for w in wanted]
        body = self._request(rec, "setBreakpoints", {"source": {"path": str(self.script.path)}, "breakpoints": specs})
        for n, bp in zip((spec["line"] for spec in specs), body.get("breakpoints", [])):
            rec.breakpoints.append((n, bool(bp.get("verified")), bp.get("line") if bp.get("verified") else None))

    def _stop(self, after: str) -> Stop:
        client = self.client
        assert client is not None
        event = client.wait_stop(timeout=TIMEOUT)
        if event.get("terminated"):
            return Stop(after, "end", exit_code=event.get("exitCode"))
        self.thread_id = event.get("threadId", self.thread_id)
        raw = client.req("stackTrace", {"threadId": self.thread_id}, timeout=TIMEOUT)["stackFrames"]
        mine = [Frame(self.frame_name(f["name"]), f["line"]) for f in raw
                if _same_file(f.get("source", {}).get("path"), self.script.path) and f["name"] not in COMPREHENSIONS]
        outer = max((i for i, f in enumerate(mine) if f.name == ENTRY), default=len(mine) - 1)
        frames = tuple(mine[: outer + 1])
        in_comprehension = bool(raw) and raw[0]["name"] in COMPREHENSIONS
        variables = self._variables(raw[0]["id"]) if raw else []
        exception = None
        if event.get("reason") == "exception":
            info = client.request("exceptionInfo", {"threadId": self.thread_id}, timeout=TIMEOUT)
            exception = (info.get("body") or {}).get("exceptionId") if info["success"] else "(no exceptionInfo)"
        names = tuple(sorted(self.normal_locals(variables)))
        return Stop(after, event.get("reason", "?"), frames, names, self.is_return_stop(variables), exception,
                    comprehension=in_comprehension)

    def _variables(self, frame_id: int) -> list[dict[str, Any]]:
        assert self.client is not None
        scopes = self.client.req("scopes", {"frameId": frame_id}, timeout=TIMEOUT)["scopes"]
        local = next((s for s in scopes if s.get("presentationHint") == "locals"), scopes[0] if scopes else None)
        if local is None:
            return []
        return self.expand(local["variablesReference"])

    def expand(self, ref: int) -> list[dict[str, Any]]:
        assert self.client is not None
        return self.client.req("variables", {"variablesReference": ref}, timeout=TIMEOUT)["variables"]


class Debugpy(Driver):
    name = "debugpy"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "debugpy.adapter"]

    def launch_arguments(self) -> dict[str, Any]:
        return {"program": str(self.script.path), "cwd": str(PROGRAMS), "justMyCode": True,
                "console": "internalConsole", "showReturnValue": True, "python": [sys.executable]}

    def settle(self, stop: Stop) -> Stop:
        # pydevd stops a function breakpoint on the def line (the call event), neuraldbg on the first
        # line of the body, where the arguments are bound and a step in lands (its README says so): a
        # 'next' takes debugpy there, and that stop, keeping the reason, is the one compared.
        if stop.reason != "function breakpoint":
            return stop
        assert self.client is not None
        self.client.req("next", {"threadId": self.thread_id}, timeout=TIMEOUT)
        body = self._stop("next")
        return replace(body, after=stop.after, reason=stop.reason, passed=(stop,))

    def passes(self, stop: Stop, step: str) -> bool:
        # In a comprehension's own frame, or in the module's code after main returned: neither is traced by
        # neuraldbg (it traces the call main(), comprehensions folded into their function).
        return stop.comprehension or all(f.name != ENTRY for f in stop.frames)

    def normal_locals(self, variables: list[dict[str, Any]]) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        for v in variables:
            if v["name"] in DEBUGPY_GROUPS and v.get("variablesReference"):
                # A group: its members are locals too (pydevd files dunders, functions, classes under them).
                out += [(c["name"], self.value(c["value"])) for c in self.expand(v["variablesReference"])
                        if c["name"] != "__exception__"]  # pydevd's exception tuple at an exception stop
            elif v["name"] != "__exception__":
                out.append((v["name"], self.value(v["value"])))
        return out

    def value(self, text: str) -> str:
        # debugpy runs the file as __main__, neuraldbg imports it under its own name.
        return _value(text.replace("__main__.", self.script.path.stem + "."))


class Neuraldbg(Driver):
    name = "neuraldbg"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "neuraldbg.dap"]

    def launch_arguments(self) -> dict[str, Any]:
        return {"program": str(self.script.path), "function": ENTRY, "args": f"{ENTRY}()", "backend": "exec",
                "allowExecution": True}

    def normal_locals(self, variables: list[dict[str, Any]]) -> list[tuple[str, str]]:
        # "(return)" / "(exception)" at its own return and exception stops, which debugpy does not make;
        # "(return) f" (a call just left) is compared with debugpy's.
        return [(v["name"], _value(v["value"])) for v in variables if v["name"] not in NEURALDBG_PSEUDO]

    def is_return_stop(self, variables: list[dict[str, Any]]) -> bool:
        return any(v["name"] == "(return)" for v in variables)

    def passes(self, stop: Stop, step: str) -> bool:
        # pdb's --Return--: debugpy makes no stop on a return event.
        return stop.returning and step in ("next", "stepIn")

    def frame_name(self, name: str) -> str:
        # neuraldbg names a frame by its qualified name (Counter.add), debugpy by the code's name (add).
        return name.rsplit(".", 1)[-1]


def _value(text: str) -> str:
    return ADDRESS.sub(" at 0x…", text)


def _same_file(path: str | None, program: Path) -> bool:
    return bool(path) and os.path.realpath(path) == os.path.realpath(program)  # type: ignore[arg-type]


def record_both(script: Script) -> tuple[Recording, Recording]:
    """(debugpy's recording, neuraldbg's recording) of one script."""
    return Debugpy(script).record(), Neuraldbg(script).record()

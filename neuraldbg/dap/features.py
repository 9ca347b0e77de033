"""The DAP requests a trace makes cheap, wired to the adapter: data and
function breakpoints, step-in targets, Debug Console completions.

Each request's logic lives in its own module; this one checks arguments,
reads the adapter's state at the stop (frames, variables references, the
program) and answers. The adapter registers :meth:`DebugFeatures.handlers`
and gives each Debugger :meth:`DebugFeatures.stop_at`, its test for data
and function breakpoints on every frame it passes (forwards and back).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

from neuraldbg.dap.completions import complete
from neuraldbg.dap.data_breakpoints import DataBreakpointError, DataBreakpoints, Watch
from neuraldbg.dap.debugger import Debugger, Outcome, Stopped
from neuraldbg.dap.function_breakpoints import FunctionBreakpoints
from neuraldbg.dap.step_targets import CallSite, TargetWalk, call_sites
from neuraldbg.dap.launch import Launched
from neuraldbg.session.registry import FrameRef
from neuraldbg.trace.frames import Frame

FEATURE_CAPABILITIES: dict[str, Any] = {
    "supportsDataBreakpoints": True,
    "supportsFunctionBreakpoints": True,
    "supportsStepInTargetsRequest": True,
    "supportsCompletionsRequest": True,
    "completionTriggerCharacters": ["."],
}


class FeatureError(ValueError):
    """A request of these features that cannot be served (one line to the client)."""


class AdapterState(Protocol):
    """What these requests read of the adapter (neuraldbg.dap.adapter.DebugAdapter) at a stop."""

    launched: Launched | None
    debugger: Debugger | None
    lines_start_at1: bool
    _refs: dict[int, Any]  # variables reference -> its scope or value
    _stop_frames: list[FrameRef]

    def _frame(self, frame_id: Any) -> FrameRef: ...
    def _output(self, text: str, category: str = "console", line: int | None = None) -> None: ...
    def _line_out(self, line: int) -> int: ...


class DebugFeatures:
    def __init__(self, adapter: AdapterState, ids: Iterator[int]) -> None:
        self.adapter = adapter
        self.data = DataBreakpoints(ids)
        self.functions = FunctionBreakpoints(ids)
        self.columns_start_at1 = True
        self._targets: dict[int, tuple[CallSite, int]] = {}  # id -> (site, the step it was listed at)
        self._target_ids = itertools.count(1)

    def handlers(self) -> dict[str, Callable[[dict[str, Any]], Any]]:
        return {
            "dataBreakpointInfo": self.data_breakpoint_info,
            "setDataBreakpoints": self.set_data_breakpoints,
            "setFunctionBreakpoints": self.set_function_breakpoints,
            "stepInTargets": self.step_in_targets,
            "completions": self.completions,
        }

    def initialize(self, args: dict[str, Any]) -> None:
        self.columns_start_at1 = args.get("columnsStartAt1", True) is not False

    # -- stops ---------------------------------------------------------------
    def stop_test(self) -> Callable[[list[Frame], int, bool], Stopped | None]:
        """The test for a new run: hit counts start again."""
        for bp in self.data.active:
            bp.rule.hits.clear()
        for fbp in self.functions.active:
            fbp.rule.hits.clear()
        return self.stop_at

    def stop_at(self, frames: Sequence[Frame], step: int, forward: bool) -> Stopped | None:
        """A data or function breakpoint stop at frame ``step`` (frames after
        it are not looked at)."""
        data = self.data.hits(frames, step, forward)
        fn_ids, errors = self.functions.hits(frames, step, forward)
        errors += [h.error for h in data if h.error]
        line = frames[step].line or None
        for error in errors:
            self.adapter._output(f"neuraldbg: {error}\n", "stderr", line)
        if data:
            said = "; ".join(h.change.describe() for h in data)
            return Stopped("data breakpoint", description="; ".join([said] + errors), text=said,
                           breakpoint_ids=[h.breakpoint.id for h in data] + fn_ids)
        if fn_ids:
            said = f"{frames[step].function} called"
            return Stopped("function breakpoint", description="; ".join([said] + errors), text=said,
                           breakpoint_ids=fn_ids)
        return None

    # -- data breakpoints ------------------------------------------------------
    def _stopped_frame(self, args: dict[str, Any]) -> FrameRef:
        adapter = self.adapter
        frame_id = args.get("frameId")
        if frame_id is not None:
            return adapter._frame(frame_id)
        if not adapter._stop_frames:
            raise FeatureError("the program is not stopped: data breakpoints are set on a stopped frame's variables")
        return adapter._stop_frames[-1]

    def data_breakpoint_info(self, args: dict[str, Any]) -> dict[str, Any]:
        name = args.get("name")
        if not isinstance(name, str) or not name.strip():
            raise FeatureError("dataBreakpointInfo needs the variable's 'name'")
        name = name.strip()
        ref_id = args.get("variablesReference")
        if ref_id is not None:
            ref = self.adapter._refs.get(ref_id) if isinstance(ref_id, int) and not isinstance(ref_id, bool) else None
            if ref is None:
                raise FeatureError(f"no variables reference {ref_id!r} (stale: the program is no longer stopped there)")
            if ref.kind != "scope":
                return {"dataId": None,
                        "description": f"{name} is an item inside a value: set the data breakpoint on the variable holding it"}
            frame = self.adapter._frame(ref.frame_id)
        else:
            frame = self._stopped_frame(args)
        if name not in frame.trace.locals_at(frame.step):
            return {"dataId": None, "description": f"{name} is not a local variable of {frame.function} at this step"}
        watch = Watch(frame.function, name)
        return {"dataId": watch.data_id, "description": f"{name} in {frame.function} (every call)",
                "accessTypes": ["write"], "canPersist": False}

    def set_data_breakpoints(self, args: dict[str, Any]) -> dict[str, Any]:
        specs = _specs(args, "setDataBreakpoints", "{dataId, accessType?, condition?, hitCondition?}")
        launched = self.adapter.launched
        if launched is None:
            if specs:
                raise FeatureError("no program is being debugged: launch one first")
            return {"breakpoints": []}
        functions = {f.qualname for f in launched.target.index.functions}
        try:
            return {"breakpoints": self.data.set(specs, functions, launched.config.program)}
        except DataBreakpointError as exc:
            raise FeatureError(str(exc)) from None

    # -- function breakpoints ---------------------------------------------------
    def set_function_breakpoints(self, args: dict[str, Any]) -> dict[str, Any]:
        specs = _specs(args, "setFunctionBreakpoints", "{name, condition?, hitCondition?}")
        launched = self.adapter.launched
        if launched is None:
            out = self.functions.set(specs, None, "", "")
        else:
            out = self.functions.set(specs, launched.target.index.functions, launched.target.source,
                                     launched.config.program)
        for bp in out:
            if "line" in bp:
                bp["line"] = self.adapter._line_out(bp["line"])
        return {"breakpoints": out}

    # -- step-in targets ------------------------------------------------------------
    def _column_out(self, line_text: str, byte_offset: int) -> int:
        """An ast column (UTF-8 bytes) as a DAP column (UTF-16 code units)."""
        chars = line_text.encode("utf-8")[:byte_offset].decode("utf-8", "replace")
        return len(chars.encode("utf-16-le")) // 2 + (1 if self.columns_start_at1 else 0)

    def step_in_targets(self, args: dict[str, Any]) -> dict[str, Any]:
        frame = self.adapter._frame(args.get("frameId"))
        launched, debugger = self.adapter.launched, self.adapter.debugger
        if not frame.top or launched is None or debugger is None:
            return {"targets": []}  # an outer frame's line is part-way through its call
        source = launched.target.source
        lines = source.splitlines()
        step = len(debugger.sim.frames) - 1
        out = []
        for site in call_sites(source, frame.line, launched.target.index.functions):
            target_id = next(self._target_ids)
            self._targets[target_id] = (site, step)
            first = lines[site.line - 1] if site.line <= len(lines) else ""
            last = lines[site.end_line - 1] if site.end_line <= len(lines) else ""
            out.append({"id": target_id, "label": site.label, "line": self.adapter._line_out(site.line),
                        "column": self._column_out(first, site.column),
                        "endLine": self.adapter._line_out(site.end_line),
                        "endColumn": self._column_out(last, site.end_column)})
        return {"targets": out}

    def step_in_target(self, target_id: Any) -> Callable[[Debugger], Outcome]:
        """The motion of ``stepIn`` with a ``targetId`` (checked now, run later)."""
        entry = self._targets.get(target_id) if isinstance(target_id, int) and not isinstance(target_id, bool) else None
        if entry is None:
            raise FeatureError(f"no step-in target {target_id!r}: ask stepInTargets at this stop")
        site, step = entry
        debugger = self.adapter.debugger
        if debugger is None or len(debugger.sim.frames) - 1 != step:
            raise FeatureError(f"step-in target {target_id} is stale: the program is no longer stopped where it was listed")
        return lambda d: step_into(d, site)

    # -- completions ------------------------------------------------------------------
    def completions(self, args: dict[str, Any]) -> dict[str, Any]:
        text, column = args.get("text"), args.get("column")
        if not isinstance(text, str) or not isinstance(column, int) or isinstance(column, bool):
            raise FeatureError("completions needs 'text' (a string) and 'column' (an integer)")
        lines = text.split("\n")
        line_no = args.get("line")
        index = 0
        if isinstance(line_no, int) and not isinstance(line_no, bool):
            index = line_no - (1 if self.adapter.lines_start_at1 else 0)
        if not 0 <= index < len(lines):
            raise FeatureError(f"completions: line {line_no} is not in the text ({len(lines)} lines)")
        line = lines[index]
        cursor = _char_index(line, column - (1 if self.columns_start_at1 else 0))
        names: dict[str, str] = {}
        functions: list[str] = []
        frame = None
        if args.get("frameId") is not None:
            frame = self.adapter._frame(args.get("frameId"))
        elif self.adapter._stop_frames:
            frame = self.adapter._stop_frames[-1]
        if frame is not None:
            names = frame.trace.locals_at(frame.step)
            functions = [f.function for f in frame.trace.frames]
        found = complete(line, cursor, names, functions)
        base = 1 if self.columns_start_at1 else 0
        start = len(line[: found.start].encode("utf-16-le")) // 2 + base
        length = len(line[found.start : found.start + found.length].encode("utf-16-le")) // 2
        return {"targets": [{"label": c.label, "type": c.type, "start": start, "length": length, "sortText": f"{i:05d}"}
                            for i, c in enumerate(found.items)]}


def _specs(args: dict[str, Any], command: str, shape: str) -> list[dict]:
    specs = args.get("breakpoints")
    if not isinstance(specs, list) or not all(isinstance(s, dict) for s in specs):
        raise FeatureError(f"{command}: 'breakpoints' must be a list of {shape}")
    return specs


def _char_index(line: str, units: int) -> int:
    """The index in ``line`` of a UTF-16 offset."""
    count = 0
    for i, ch in enumerate(line):
        if count >= units:
            return i
        count += 2 if ord(ch) > 0xFFFF else 1
    return len(line)


def step_into(debugger: Debugger, site: CallSite) -> Outcome:
    """``stepIn`` to one target: run on (stopping at any breakpoint on the
    way) until the chosen callee is called, then land on its first line; if
    the line ends without calling it, stop where it ended (as step over)."""

    def move() -> None:
        sim = debugger.sim
        debugger.returned = False
        cur = sim.current
        if cur is None:
            return
        walk = TargetWalk(site, cur.depth)
        while sim.advance(None, debugger.cancel):
            step = len(sim.frames) - 1
            frame = sim.frames[step]
            if walk.entered(frame):
                if sim.advance("line", debugger.cancel):
                    debugger._check(len(sim.frames) - 1, sim.frames[-1])
                return
            if debugger._check(step, frame) or walk.done(frame):
                return

    return debugger._motion(move, "step")

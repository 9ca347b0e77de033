"""The debug adapter: DAP requests in, simulation motions out.

Threads: a reader takes messages off the connection and never blocks on
work; requests run one after another on the session's worker thread, in
the order they came (a step can take a model call). ``pause``, ``threads``
and ``cancel`` are answered by the reader at once; ``disconnect`` and
``terminate`` cancel the running generation at once and are answered in
order. Every request gets exactly one response.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import os
import queue
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from neuraldbg.backends.base import BackendError, CancelToken
from neuraldbg.config import Settings
from neuraldbg.dap import variables as dapvars
from neuraldbg.dap.breakpoints import PENDING, Breakpoint, LineTable, line_table, make_breakpoint
from neuraldbg.dap.debugger import Debugger, Ended, Outcome
from neuraldbg.dap.exceptions import FILTERS as EXCEPTION_FILTERS, RAISED, UNCAUGHT, ExceptionStop
from neuraldbg.dap.rerun import RerunError, rerun_call
from neuraldbg.dap.stepping import exits_by_exception, return_values
from neuraldbg.dap.features import FEATURE_CAPABILITIES, DebugFeatures, FeatureError
from neuraldbg.dap.goto_step import GO_TO_STEP, go_to_step_motion
from neuraldbg.dap.launch import LaunchConfig, LaunchError, Launched, prepare, settings_for
from neuraldbg.dap.protocol import BadMessage, Connection
from neuraldbg.dap.safe_eval import EvalError, evaluate, parse_new_value
from neuraldbg.session.registry import DebugRegistry, FrameRef
from neuraldbg.session.policy import ExecutionPolicy
from neuraldbg.session.session import Session
from neuraldbg.simulation.simulation import SimulationError
from neuraldbg.simulation.target import TargetError
from neuraldbg.trace.frames import Trace

log = logging.getLogger(__name__)

THREAD_ID = 1
REAL_RUN_BACKENDS = ("exec", "replay")  # they walk a real run: an edit is a new call, not a resumed state

CAPABILITIES: dict[str, Any] = {
    "supportsConfigurationDoneRequest": True,
    "supportsStepBack": True,
    "supportsSetVariable": True,
    "supportsConditionalBreakpoints": True,
    "supportsHitConditionalBreakpoints": True,
    "supportsLogPoints": True,
    "supportsEvaluateForHovers": True,
    "supportsRestartRequest": True,
    "supportsTerminateRequest": True,
    "supportsCancelRequest": False,
    **FEATURE_CAPABILITIES,
    "supportsExceptionInfoRequest": True,
    "exceptionBreakpointFilters": EXCEPTION_FILTERS,
}

# Answered by the reader thread: they must work while a step is running.
IMMEDIATE = {"pause", "threads", "cancel"}


class RequestError(Exception):
    """A request that cannot be served; the message goes to the client."""


@dataclass(frozen=True)
class Then:
    """A handler's response body plus work to do after the response is sent."""

    body: dict[str, Any] | None
    after: Callable[[], None]


@dataclass
class _Ref:
    kind: str  # "scope" or "value"
    frame_id: int = 0
    text: str = ""
    evaluate_name: str | None = None


class DebugAdapter:
    def __init__(self, conn: Connection, *, session: Session | None = None,
                 registry: DebugRegistry | None = None) -> None:
        """``session``: the language server's (its documents, traces, model
        and workspace permission are shared); None: standalone, with a
        session of its own where only a launch's allowExecution permits runs."""
        self.conn = conn
        self.standalone = session is None
        self.session = session or Session(Settings(), policy=ExecutionPolicy.launch_request(), workers=1)
        self.registry = registry or DebugRegistry()
        self.session_id = uuid.uuid4().hex[:12]
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._cancel = CancelToken()
        self._pause = threading.Event()
        self._motions = 0  # motions queued or running (pause applies only then)
        self._state_lock = threading.Lock()
        self._done = threading.Event()

        self.lines_start_at1 = True
        self.launched: Launched | None = None
        self.debugger: Debugger | None = None
        self.table: LineTable | None = None
        self.configured = False
        self.ended = False
        self.break_on_exceptions = False  # "raised"
        self.break_on_uncaught = True  # "uncaught": debugpy's default, until the client says
        self._exception: ExceptionStop | None = None  # the exception at the current stop
        self.breakpoints: dict[str, list[Breakpoint]] = {}
        self._bp_ids = itertools.count(1)
        self._refs: dict[int, _Ref] = {}
        self._ref_ids = itertools.count(1)
        self._stop_frames: list[FrameRef] = []
        self._returns: list[tuple[str, str]] = []  # (function, value): the "(return) f" values at this stop
        self._restarts = 0
        self._handlers: dict[str, Callable[[dict[str, Any]], Any]] = {
            "initialize": self.initialize,
            "launch": self.launch,
            "attach": self.attach,
            "setBreakpoints": self.set_breakpoints,
            "setExceptionBreakpoints": self.set_exception_breakpoints,
            "configurationDone": self.configuration_done,
            "stackTrace": self.stack_trace,
            "scopes": self.scopes,
            "variables": self.variables,
            "next": self.next,
            "stepIn": self.step_in,
            "stepOut": self.step_out,
            "continue": self.continue_,
            "stepBack": self.step_back,
            "reverseContinue": self.reverse_continue,
            "setVariable": self.set_variable,
            "evaluate": self.evaluate,
            "restart": self.restart,
            "terminate": self.terminate,
            "disconnect": self.disconnect,
            "source": self.source,
            "exceptionInfo": self.exception_info,
            "pause": self.pause,
            "threads": self.threads,
            "cancel": self.cancel,
            "neuraldbg/trace": self.custom_trace,
            GO_TO_STEP: lambda args: self._motion(args, go_to_step_motion(args)),  # the trace views' frame clicks
        }
        self.features = DebugFeatures(self, self._bp_ids)
        self._handlers.update(self.features.handlers())

    # == running ===================================================================
    def serve(self) -> None:
        """Run until the client disconnects or goes away (blocks)."""
        reader = threading.Thread(target=self._read_loop, name=f"dap-reader-{self.session_id}", daemon=True)
        reader.start()
        self._reader_thread = reader
        try:
            while True:
                msg = self._queue.get()
                if msg is None:
                    break
                try:
                    self._handle(msg)
                finally:
                    if msg.get("command") in _MOTIONS:
                        with self._state_lock:
                            self._motions -= 1
                if msg.get("command") == "disconnect":
                    break
        finally:
            self._shutdown()

    def _read_loop(self) -> None:
        try:
            for msg in self.conn.messages():
                if isinstance(msg, BadMessage):
                    self.conn.event("output", {"category": "stderr", "output": f"neuraldbg: ignored a message: {msg}\n"})
                    continue
                if msg.get("type") != "request":
                    continue  # responses to reverse requests, stray events
                command, seq = msg.get("command"), msg.get("seq")
                if not isinstance(command, str) or not isinstance(seq, int):
                    self.conn.respond(msg, error="a request needs an integer 'seq' and a string 'command'")
                    continue
                if command in IMMEDIATE:
                    self._handle(msg)
                    continue
                if command in ("disconnect", "terminate"):
                    self._cancel.cancel()  # stop a running generation now
                    self._pause.set()
                if command in _MOTIONS:
                    with self._state_lock:
                        self._motions += 1
                self._queue.put(msg)
        except Exception:  # the reader must never take the process down with a traceback
            log.exception("DAP reader failed")
        finally:
            self._cancel.cancel()
            self._queue.put(None)

    def _handle(self, msg: dict[str, Any]) -> None:
        command = msg["command"]
        args = msg.get("arguments")
        if args is None:
            args = {}
        handler = self._handlers.get(command)
        try:
            if not isinstance(args, dict):
                raise RequestError(f"{command}: 'arguments' must be an object")
            if handler is None:
                raise RequestError(f"unknown request {command!r}")
            result = handler(args)
        except (RequestError, LaunchError, TargetError, EvalError, SimulationError, BackendError, FeatureError) as exc:
            self.conn.respond(msg, error=str(exc))
            return
        except Exception as exc:
            log.exception("request %s failed", command)
            self.conn.respond(msg, error=f"internal error in {command}: {type(exc).__name__}: {exc}")
            return
        if isinstance(result, Then):
            self.conn.respond(msg, result.body)
            try:
                result.after()
            except Exception as exc:
                log.exception("after %s", command)
                self._output(f"neuraldbg: internal error after {command}: {type(exc).__name__}: {exc}\n", "stderr")
        else:
            self.conn.respond(msg, result)

    def _shutdown(self) -> None:
        if self._done.is_set():
            return
        self._done.set()
        self._cancel.cancel()
        self.registry.clear(self.session_id)
        self.conn.close()  # stops a stoppable reader
        reader = getattr(self, "_reader_thread", None)
        if reader is not None and reader is not threading.current_thread():
            reader.join(timeout=1.0)
        if self.standalone:
            self.session.engines.close()

    # == helpers ===================================================================
    def _output(self, text: str, category: str = "console", line: int | None = None) -> None:
        body: dict[str, Any] = {"category": category, "output": text}
        if line is not None and self.launched is not None:
            body["source"] = self._source()
            body["line"] = self._line_out(line)
        self.conn.event("output", body)

    def _source(self) -> dict[str, Any]:
        assert self.launched is not None
        path = self.launched.config.program
        return {"name": os.path.basename(path), "path": path}

    def _line_out(self, line: int) -> int:
        return line if self.lines_start_at1 else line - 1

    def _line_in(self, line: int) -> int:
        return line if self.lines_start_at1 else line + 1

    def _require_stopped(self) -> Debugger:
        if self.launched is None or self.debugger is None:
            raise RequestError("no program is being debugged: launch one first")
        if self.ended:
            raise RequestError("the debug session has ended")
        if not self.configured:
            raise RequestError("the debug session is not configured yet (configurationDone)")
        return self.debugger

    def _verified_breakpoints(self) -> list[Breakpoint]:
        if self.launched is None:
            return []
        return [bp for bp in self.breakpoints.get(_norm(self.launched.config.program), []) if bp.verified]

    def _invalidate_stop(self) -> None:
        self._refs.clear()
        self._stop_frames = []
        self.registry.clear(self.session_id)

    # == lifecycle ====================================================================
    def initialize(self, args: dict[str, Any]) -> dict[str, Any]:
        self.lines_start_at1 = args.get("linesStartAt1", True) is not False
        self.features.initialize(args)
        return dict(CAPABILITIES)

    def attach(self, args: dict[str, Any]) -> None:
        raise RequestError("neuraldbg cannot attach to a running program: use a launch configuration")

    def launch(self, args: dict[str, Any]) -> Then:
        if self.launched is not None:
            raise RequestError("a program is already launched in this session")
        config = LaunchConfig.parse(args)
        self.launched = self._prepare(config)
        return Then(None, self._after_launch)

    def _prepare(self, config: LaunchConfig) -> Launched:
        # Read at every launch and restart: the workspace setting may have changed.
        settings = settings_for(config, self.session.settings, self.standalone)
        launched = prepare(config, settings, self.session, self._cancel, standalone=self.standalone)
        self._start(launched)
        return launched

    def _start(self, launched: Launched) -> None:
        sim = launched.sim
        debugger = Debugger(sim, self._verified_breakpoints, self._debugger_output,
                            break_on_exceptions=self.break_on_exceptions, break_on_uncaught=self.break_on_uncaught,
                            cancel=self._cancel, source=launched.target.source, path=launched.config.program,
                            pause_requested=self._pause, model_lock=launched.run.model_lock,
                            extra_stops=self.features.stop_test(),
                            extra_active=lambda: bool(self.features.data.active or self.features.functions.active))
        with debugger.generating():
            sim.start(self._cancel)
        if sim.current is None:
            raise LaunchError(f"the trace of {launched.target.function.qualname} has no frames: {sim.error or 'unknown error'}")
        self.table = line_table(launched.target.source, launched.target.index.functions, launched.target.function.qualname)
        debugger.generator_returns = self.table.generator_returns
        for bps in self.breakpoints.values():
            for bp in bps:
                bp.hits.clear()
        self.debugger = debugger

    def _debugger_output(self, text: str, category: str, line: int | None) -> None:
        self._output(text, category, line)

    def _after_launch(self) -> None:
        launched = self.launched
        assert launched is not None
        origin = launched.target.call_origin
        call = launched.target.call or "(inputs imagined by the model)"
        self._output(f"neuraldbg: simulating {call} on the {launched.settings.backend} backend (input: {origin})\n")
        # Breakpoints set before the program was known are verified now.
        for path, bps in self.breakpoints.items():
            for i, bp in enumerate(bps):
                if not bp.verified and bp.message == PENDING:
                    new = self._make_bp(path, bp.spec, keep_id=bp.id)
                    bps[i] = new
                    self.conn.event("breakpoint", {"reason": "changed", "breakpoint": self._bp_out(new)})
        self.conn.event("initialized")

    def configuration_done(self, args: dict[str, Any]) -> Then:
        if self.launched is None or self.debugger is None:
            raise RequestError("no program is being debugged: launch one first")
        if self.configured:
            raise RequestError("configurationDone was already received")
        self.configured = True
        debugger = self.debugger
        stop_on_entry = self.launched.config.stop_on_entry
        return Then(None, lambda: self._report(debugger.begin(stop_on_entry)))

    def restart(self, args: dict[str, Any]) -> Then:
        if self.launched is None:
            raise RequestError("no program is being debugged: launch one first")
        new_args = args.get("arguments")
        self._invalidate_stop()
        self._cancel = CancelToken()
        self._restarts += 1
        launched = self.launched
        if isinstance(new_args, dict) and new_args:
            config = LaunchConfig.parse(new_args)
            launched = self._prepare(config)
        elif launched.sim.engine.predicted:
            # A model backend: a new sample (new inputs when they are imagined).
            sim = launched.sim
            sim.reseed(launched.settings.seed + self._restarts)
            self._start(launched)
        else:
            launched = self._prepare(launched.config)  # run it again: the file may have changed
        self.launched = launched
        self.ended = False
        self.configured = True
        debugger = self.debugger
        assert debugger is not None
        stop_on_entry = launched.config.stop_on_entry
        return Then(None, lambda: self._report(debugger.begin(stop_on_entry)))

    def terminate(self, args: dict[str, Any]) -> Then:
        def after() -> None:
            if not self.ended:
                self._end(Ended(0, None), exited=False)

        return Then(None, after)

    def disconnect(self, args: dict[str, Any]) -> None:
        self._invalidate_stop()
        self.ended = True
        return None

    # == breakpoints =================================================================
    def _make_bp(self, path: str, spec: dict[str, Any], keep_id: int | None = None) -> Breakpoint:
        bp_id = keep_id if keep_id is not None else next(self._bp_ids)
        table: LineTable | None = None
        if self.launched is not None:
            table = self.table
        raw = dict(spec)
        spec = dict(spec)
        if isinstance(spec.get("line"), int):
            spec["line"] = self._line_in(spec["line"])
        bp = make_breakpoint(bp_id, path, spec, table)
        bp.spec = raw
        if self.launched is not None and path != _norm(self.launched.config.program):
            bp.line = None
            bp.message = f"neuraldbg simulates {os.path.basename(self.launched.config.program)} only"
        return bp

    def _bp_out(self, bp: Breakpoint) -> dict[str, Any]:
        out = bp.to_dap()
        out["line"] = self._line_out(out["line"])
        return out

    def set_breakpoints(self, args: dict[str, Any]) -> dict[str, Any]:
        source = args.get("source")
        path = source.get("path") if isinstance(source, dict) else None
        if not isinstance(path, str) or not path:
            raise RequestError("setBreakpoints needs source.path")
        specs = args.get("breakpoints")
        if specs is None:
            lines = args.get("lines") or []
            specs = [{"line": line} for line in lines] if isinstance(lines, list) else None
        if not isinstance(specs, list) or not all(isinstance(s, dict) for s in specs):
            raise RequestError("setBreakpoints: 'breakpoints' must be a list of {line, condition?, hitCondition?, logMessage?}")
        key = _norm(path)
        old = {(_bp_key(bp)): bp for bp in self.breakpoints.get(key, [])}
        new: list[Breakpoint] = []
        for spec in specs:
            bp = self._make_bp(key, spec)
            prev = old.get(_bp_key(bp))
            if prev is not None and prev.verified == bp.verified:
                bp.id, bp.hits = prev.id, prev.hits  # an unchanged breakpoint keeps its hit count
            new.append(bp)
        self.breakpoints[key] = new
        return {"breakpoints": [self._bp_out(bp) for bp in new]}

    def set_exception_breakpoints(self, args: dict[str, Any]) -> dict[str, Any]:
        filters = args.get("filters") or []
        if not isinstance(filters, list):
            raise RequestError("setExceptionBreakpoints: 'filters' must be a list")
        options = args.get("filterOptions") or []
        names = {f for f in filters if isinstance(f, str)}
        names |= {o.get("filterId") for o in options if isinstance(o, dict)}
        self.break_on_exceptions = RAISED in names
        self.break_on_uncaught = UNCAUGHT in names
        if self.debugger is not None:
            self.debugger.break_on_exceptions = self.break_on_exceptions
            self.debugger.break_on_uncaught = self.break_on_uncaught
        return {"breakpoints": [{"verified": f in (RAISED, UNCAUGHT)} for f in filters]}

    # == motions =======================================================================
    def _motion(self, args: dict[str, Any], run: Callable[[Debugger], Outcome],
                body: dict[str, Any] | None = None) -> Then:
        _thread(args)
        debugger = self._require_stopped()
        self._invalidate_stop()
        return Then(body, lambda: self._report(run(debugger)))

    def next(self, args: dict[str, Any]) -> Then:
        return self._motion(args, lambda d: d.next())

    def step_in(self, args: dict[str, Any]) -> Then:
        if args.get("targetId") is not None:
            return self._motion(args, self.features.step_in_target(args["targetId"]))
        return self._motion(args, lambda d: d.step_in())

    def step_out(self, args: dict[str, Any]) -> Then:
        return self._motion(args, lambda d: d.step_out())

    def continue_(self, args: dict[str, Any]) -> Then:
        return self._motion(args, lambda d: d.cont(), {"allThreadsContinued": True})

    def step_back(self, args: dict[str, Any]) -> Then:
        return self._motion(args, lambda d: d.step_back())

    def reverse_continue(self, args: dict[str, Any]) -> Then:
        return self._motion(args, lambda d: d.reverse_continue())

    def pause(self, args: dict[str, Any]) -> None:
        _thread(args)
        # Reader thread: the running continue sees the flag at its next frame.
        with self._state_lock:
            if self._motions > 0:
                self._pause.set()
        return None

    def cancel(self, args: dict[str, Any]) -> None:
        raise RequestError("cancel is not supported")

    def _report(self, outcome: Outcome) -> None:
        self._exception = None
        if isinstance(outcome, Ended):
            self._end(outcome)
            return
        self._exception = outcome.exception
        self._publish_stop()
        body: dict[str, Any] = {"reason": outcome.reason, "threadId": THREAD_ID, "allThreadsStopped": True}
        if outcome.description:
            body["description"] = outcome.description
        if outcome.text:
            body["text"] = outcome.text
        if outcome.breakpoint_ids:
            body["hitBreakpointIds"] = outcome.breakpoint_ids
        frame = self.debugger.sim.current if self.debugger else None
        if frame is not None and frame.problem:
            self._output(f"neuraldbg: this frame was malformed: {frame.problem}\n", "stderr", frame.line or None)
        self.conn.event("stopped", body)

    def _end(self, outcome: Ended, exited: bool = True) -> None:
        self.ended = True
        self._invalidate_stop()
        # What the program printed, where a real run recorded it (exec); a
        # model predicts no stdout.
        truth = getattr(self.debugger.sim.engine, "truth", None) if self.debugger else None
        printed = getattr(truth, "stdout", "") if exited else ""
        if isinstance(printed, str) and printed:
            self._output(printed, "stdout")
        if exited and outcome.traceback:
            self._output(outcome.traceback, "stderr")  # as Python prints an uncaught exception
        if exited:
            self.conn.event("exited", {"exitCode": outcome.exit_code})
        self.conn.event("terminated")

    # == state at a stop =================================================================
    def _publish_stop(self) -> None:
        assert self.debugger is not None and self.launched is not None
        trace = self.debugger.sim.trace()
        self._refs.clear()
        refs = stack_refs(trace, self.registry, self.session_id, self.launched.config.program,
                          self.launched.target.function.def_line, returned=self.debugger.returned)
        self._stop_frames = refs
        self._returns = return_values(trace.frames, self.debugger.returns, refs[-1].step) if refs else []
        self.registry.publish(self.session_id, refs)

    def _frame(self, frame_id: Any) -> FrameRef:
        if not isinstance(frame_id, int) or isinstance(frame_id, bool):
            raise RequestError("'frameId' must be an integer")
        for ref in self._stop_frames:
            if ref.frame_id == frame_id:
                return ref
        raise RequestError(f"no frame {frame_id} (stale frame id: the program is no longer stopped there)")

    def threads(self, args: dict[str, Any]) -> dict[str, Any]:
        launched = self.launched
        if launched is None or self.ended:
            return {"threads": []}
        return {"threads": [{"id": THREAD_ID, "name": f"simulated {launched.target.function.qualname}"}]}

    def stack_trace(self, args: dict[str, Any]) -> dict[str, Any]:
        _thread(args)
        self._require_stopped()
        if not self._stop_frames:
            raise RequestError("the program is not stopped")
        frames = list(reversed(self._stop_frames))  # innermost first
        start = args.get("startFrame") or 0
        levels = args.get("levels") or 0
        if not isinstance(start, int) or not isinstance(levels, int) or start < 0 or levels < 0:
            raise RequestError("stackTrace: startFrame and levels must be non-negative integers")
        chosen = frames[start : start + levels] if levels else frames[start:]
        out = []
        for ref in chosen:
            frame = ref.trace.frames[ref.step]
            item: dict[str, Any] = {"id": ref.frame_id, "name": ref.function, "source": self._source(),
                                    "line": self._line_out(ref.line), "column": 1}
            if frame.problem:
                item["presentationHint"] = "subtle"
            out.append(item)
        return {"stackFrames": out, "totalFrames": len(frames)}

    def scopes(self, args: dict[str, Any]) -> dict[str, Any]:
        self._require_stopped()
        ref = self._frame(args.get("frameId"))
        var_ref = self._new_ref(_Ref("scope", frame_id=ref.frame_id))
        return {"scopes": [{"name": "Locals", "presentationHint": "locals", "variablesReference": var_ref,
                            "namedVariables": len(self._scope_values(ref)), "expensive": False}]}

    def _new_ref(self, ref: _Ref) -> int:
        i = next(self._ref_ids)
        self._refs[i] = ref
        return i

    def _scope_values(self, ref: FrameRef) -> list[tuple[str, str, str | None]]:
        """(name, repr, evaluateName) of a frame's variables."""
        out = [(name, value, name) for name, value in ref.trace.locals_at(ref.step).items()]
        frame = ref.trace.frames[ref.step]
        if ref.top:
            # What the calls of this frame returned during the step (debugpy's return values).
            out += [(f"(return) {name}", value, None) for name, value in self._returns]
        if ref.top and frame.event == "return" and frame.value is not None and not exits_by_exception(ref.trace.frames, ref.step):
            out.append(("(return)", frame.value, None))
        if ref.top and frame.event == "exception" and frame.value is not None:
            out.append(("(exception)", frame.value, None))
        return out

    def _variable(self, name: str, text: str, evaluate_name: str | None) -> dict[str, Any]:
        var: dict[str, Any] = {"name": name, "value": text, "variablesReference": 0}
        type_name = dapvars.type_name(text)
        if type_name:
            var["type"] = type_name
        if evaluate_name:
            var["evaluateName"] = evaluate_name
        n = dapvars.count_children(text)
        if n:
            var["variablesReference"] = self._new_ref(_Ref("value", text=text, evaluate_name=evaluate_name))
            if text.lstrip()[:1] in "[(":
                var["indexedVariables"] = n
            else:
                var["namedVariables"] = n
        return var

    def variables(self, args: dict[str, Any]) -> dict[str, Any]:
        self._require_stopped()
        ref_id = args.get("variablesReference")
        if not isinstance(ref_id, int) or ref_id not in self._refs:
            raise RequestError(f"no variables reference {ref_id!r} (stale: the program is no longer stopped there)")
        ref = self._refs[ref_id]
        if ref.kind == "scope":
            items = self._scope_values(self._frame(ref.frame_id))
        else:
            kids = dapvars.children(ref.text, ref.evaluate_name) or []
            items = [(c.name, c.text, c.evaluate_name) for c in kids]
        start, count = args.get("start"), args.get("count")
        if isinstance(start, int) and start > 0:
            items = items[start:]
        if isinstance(count, int) and count > 0:
            items = items[:count]
        return {"variables": [self._variable(n, t, e) for n, t, e in items]}

    def set_variable(self, args: dict[str, Any]) -> dict[str, Any]:
        debugger = self._require_stopped()
        ref_id, name, value = args.get("variablesReference"), args.get("name"), args.get("value")
        if not isinstance(ref_id, int) or ref_id not in self._refs:
            raise RequestError(f"no variables reference {ref_id!r}")
        if not isinstance(name, str) or not isinstance(value, str):
            raise RequestError("setVariable needs 'name' and 'value' strings")
        ref = self._refs[ref_id]
        if ref.kind != "scope":
            raise RequestError("only a local variable itself can be set, not an item inside it: set the whole value")
        frame_ref = self._frame(ref.frame_id)
        if not frame_ref.top:
            raise RequestError("only the current frame's variables can be set (the outer frames' states are past)")
        if name.startswith("("):
            raise RequestError(f"{name} cannot be set")
        if frame_ref.step != len(debugger.sim.frames) - 1:
            raise RequestError("a variable cannot be set in the middle of a line (a call on it has just returned): "
                               "step once more and set it there")
        if name not in frame_ref.trace.locals_at(frame_ref.step):
            raise RequestError(f"no local {name!r} at this step")
        new_repr = parse_new_value(value)
        if frame_ref.trace.frames[frame_ref.step].event not in ("call", "line"):
            raise RequestError("variables can only be edited at a call or line frame (a return or exception has no state of its own)")
        backend = debugger.sim.engine.backend
        if backend in REAL_RUN_BACKENDS or not debugger.sim.engine.supports_edit:
            # A real run cannot be resumed from an edited state (the replay
            # would go on with the real run's values): only a new call can.
            self._rerun(frame_ref, name, new_repr)
        else:
            debugger.sim.edit(frame_ref.step, name, new_repr)
            self._output(f"neuraldbg: {name} = {new_repr} at step {frame_ref.step}: the later steps are dropped and "
                         f"the {backend} model predicts them again from the edited state\n")
        # The stop stays where it is; its snapshot now holds the edited value
        # (every later frame was dropped and will be re-simulated).
        trace = self.debugger.sim.trace() if self.debugger else debugger.sim.trace()
        refreshed = []
        for fr in self._stop_frames:
            self.registry.update(fr.frame_id, trace)
            refreshed.append(FrameRef(fr.frame_id, fr.session_id, trace, fr.step, fr.path, fr.function, fr.line, fr.top))
        self._stop_frames = refreshed
        out = self._variable(name, new_repr, name)
        out.pop("name")
        return out

    def _rerun(self, frame_ref: FrameRef, name: str, new_repr: str) -> None:
        """An edited argument at the call's first frame: run that call for
        real (seconds) and walk or replay it from its start, as a launch does."""
        launched = self.launched
        assert launched is not None and self.debugger is not None
        backend = self.debugger.sim.engine.backend
        try:
            call = rerun_call(launched.target.source, launched.target.function,
                              frame_ref.trace.frames[frame_ref.step], name, new_repr)
        except RerunError as exc:
            raise RequestError(f"setting a variable here is not supported on the {backend} backend: {exc}") from None
        config = dataclasses.replace(launched.config, function=launched.target.function.qualname, args=call)
        self.launched = self._prepare(config)
        self._output(f"neuraldbg: {name} = {new_repr}: ran {call} for real on the {backend} backend; "
                     "the steps from here are that run's\n")

    def evaluate(self, args: dict[str, Any]) -> dict[str, Any]:
        expression = args.get("expression")
        if not isinstance(expression, str):
            raise RequestError("evaluate needs an 'expression' string")
        frame_id = args.get("frameId")
        names: dict[str, str] = {}
        if frame_id is not None:
            ref = self._frame(frame_id)
            names = ref.trace.locals_at(ref.step)
        elif self._stop_frames:
            top = self._stop_frames[-1]
            names = top.trace.locals_at(top.step)
        text = expression.strip()
        if text in names:
            # A bare name shows the predicted text as is (even a non-literal repr).
            return self._result(names[text], text)
        value = evaluate(text, names)
        return self._result(repr(value), None)

    def _result(self, text: str, evaluate_name: str | None) -> dict[str, Any]:
        var = self._variable("", text, evaluate_name)
        out = {"result": text, "variablesReference": var["variablesReference"]}
        if "type" in var:
            out["type"] = var["type"]
        for k in ("indexedVariables", "namedVariables"):
            if k in var:
                out[k] = var[k]
        return out

    def exception_info(self, args: dict[str, Any]) -> dict[str, Any]:
        """debugpy's answer: exceptionId the type, description the message,
        breakMode, details with the traceback of the frame that raised."""
        _thread(args)
        self._require_stopped()
        exc = self._exception
        if exc is None or not self._stop_frames:
            raise RequestError("the program is not stopped on an exception")
        return {"exceptionId": exc.type_name, "description": exc.description, "breakMode": exc.break_mode,
                "details": {"message": exc.description, "typeName": exc.type_name, "fullTypeName": exc.type_name,
                            "stackTrace": exc.traceback, "source": self.launched.config.program if self.launched else ""}}

    def source(self, args: dict[str, Any]) -> dict[str, Any]:
        if self.launched is None:
            raise RequestError("no program is being debugged")
        return {"content": self.launched.target.source, "mimeType": "text/x-python"}

    def custom_trace(self, args: dict[str, Any]) -> dict[str, Any]:
        """``neuraldbg/trace``: the simulation's frames so far and the current step."""
        if self.debugger is None:
            raise RequestError("no program is being debugged")
        sim = self.debugger.sim
        return {"trace": sim.trace().to_json(), "step": len(sim.frames) - 1, "done": sim.done}


_MOTIONS = {"next", "stepIn", "stepOut", "continue", "stepBack", "reverseContinue", "configurationDone", "restart", GO_TO_STEP}


def _thread(args: dict[str, Any]) -> None:
    """A request about a thread other than the simulated one is an error."""
    thread = args.get("threadId")
    if thread is not None and (thread != THREAD_ID or isinstance(thread, bool)):
        raise RequestError(f"no thread {thread!r}: the simulated program has one thread, {THREAD_ID}")


def _norm(path: str) -> str:
    return os.path.normcase(os.path.realpath(path))


def _bp_key(bp: Breakpoint) -> tuple[Any, ...]:
    return tuple(str(bp.spec.get(k)) for k in ("line", "condition", "hitCondition", "logMessage"))


def stack_refs(trace: Trace, registry: DebugRegistry, session_id: str, path: str, entry_line: int, *,
               returned: bool = False) -> list[FrameRef]:
    """One FrameRef per active call at the trace's last step, outermost
    first; each scope is shown at its own current frame (for a caller, the
    line that made the call). ``returned``: the last frame is a return and
    the stop is in its caller (the scope that returned is not shown)."""
    frames = trace.frames
    cur = len(frames) - 1
    stack = trace.stack_at(cur) or [0]
    out: list[FrameRef] = []
    for k, c in enumerate(stack):
        if k == len(stack) - 1:
            j = cur
        else:
            nxt, depth = stack[k + 1], frames[c].depth
            j = next((i for i in range(nxt - 1, c - 1, -1) if frames[i].depth == depth), c)
        line = frames[j].line or frames[c].line or entry_line
        out.append(FrameRef(registry.next_id(), session_id, trace, j, path, frames[c].function, line,
                            top=(k == len(stack) - 1)))
    if returned and len(out) > 1:
        out.pop()
        out[-1] = dataclasses.replace(out[-1], top=True)
    return out

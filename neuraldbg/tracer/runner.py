"""Run one traced call in a sandboxed child process and build its Trace.

The parent never runs user code. It starts ``child.py`` in its own session
with a clean environment and a fresh temporary directory as cwd, feeds it a
JSON request, enforces the wall time (killing the whole process group), caps
what it reads back, and turns whatever happened into a :class:`Trace`.
"""

from __future__ import annotations

import ast
import json
import logging
import marshal
import os
import re
import selectors
import signal
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from neuraldbg.trace.frames import EVENTS, Frame, StopKind, Trace, TraceStatus
from neuraldbg.tracer import isolation as iso
from neuraldbg.tracer import modules
from neuraldbg.tracer.interpreters import Interpreter, InterpreterError
from neuraldbg.tracer.interpreters import find as find_interpreter
from neuraldbg.tracer.isolation import Isolation, Level
from neuraldbg.tracer.limits import Limits


class Cancellable(Protocol):
    """What a run checks to stop early (neuraldbg.backends.base.CancelToken is one)."""

    @property
    def cancelled(self) -> bool: ...

logger = logging.getLogger(__name__)

CHILD_SCRIPT = Path(__file__).with_name("child.py")
RESULT_MARKER = b"\n--neuraldbg-result--\n"  # must match child.py
KILL_GRACE_SECONDS = 2.0  # the child stops itself at wall_seconds; the parent kills it this much later
CANCEL_POLL_SECONDS = 0.05  # how often a cancellable run looks at its token (a stale run dies this fast)
CANCELLED = "cancelled"  # the error of a run stopped by its cancel token
MAX_RESULT_BYTES = 64 * 1024 * 1024  # a bigger trace is not worth holding in an editor process
MAX_STDERR_BYTES = 64 * 1024
EXIT_CONFINE_FAILED = 71  # must match child.py: Landlock/seccomp could not be applied
BWRAP_FAILED = 1  # bubblewrap's own exit code when it cannot set the sandbox up
_LINE_BREAK = re.compile(r"\r\n|\r|\n")  # the compiler's line breaks (str.splitlines has more)

Job = tuple[str, str, str | None, str]  # (source, call, function, path)


@dataclass
class _ChildOutcome:
    returncode: int | None
    stdout: bytes
    stderr: bytes
    timed_out: bool
    overflow: bool
    elapsed: float
    cancelled: bool = False  # killed because its cancel token was set


def run_trace(
    source: str,
    call: str,
    *,
    function: str | None = None,
    path: str = "<string>",
    limits: Limits = Limits(),
    isolation: Level | None = None,
    setup: str = "",
    python: str | None = None,
    cancel: Cancellable | None = None,
) -> Trace:
    """Execute ``call`` against the module ``source`` (compiled as ``path``)
    in a sandboxed child and return the executed trace.

    Never raises for anything the traced program does: failures are in
    ``trace.error`` / ``trace.status``. ``function`` is the entry's qualified
    name; None derives it from the callee of ``call``. ``isolation`` pins a
    level (tests, benchmarks; an error if this machine lacks it); None uses
    the strongest the machine offers (:func:`isolation.current`). ``setup``
    runs (untraced) in the module's namespace before the call; ``python`` is
    the interpreter of the user's project (None: this one); ``cancel`` stops
    the run (the child is killed).
    """
    if not isinstance(source, str) or not isinstance(call, str):
        raise TypeError(f"source and call must be str, got {type(source).__name__} and {type(call).__name__}")
    try:
        interpreter = find_interpreter(python)
    except InterpreterError as exc:
        return _failed(function, call, str(exc))
    request, roots = child_request(source, call, function=function, path=path, limits=limits, setup=setup,
                                   interpreter=interpreter)
    outcome = launch(request, limits, roots, interpreter, isolation=isolation, cancel=cancel)
    if isinstance(outcome, str):
        return _failed(function, call, outcome)
    return _to_trace(outcome, source, call, function, limits)


def child_request(source: str, call: str, *, function: str | None, path: str, limits: Limits, setup: str,
                  interpreter: Interpreter) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The child's request for one call (the batch mode adds its own keys),
    and the sys.path roots the file imports from."""
    module = modules.locate(path)  # the dotted name and sys.path roots Python would import it with
    request = {
        "source": source,
        "call": call,
        "function": function,
        "path": path,
        "limits": asdict(limits),
        "sys_path": list(interpreter.sys_path),
        "module": module.name,
        "roots": list(module.roots),
        "setup": setup,
    }
    return request, tuple(module.roots)


def launch(request: dict[str, Any], limits: Limits, roots: tuple[str, ...], interpreter: Interpreter, *,
           isolation: Level | None = None, cancel: Cancellable | None = None) -> "_ChildOutcome | str":
    """Run the child on ``request`` in a fresh sandbox directory at the
    strongest isolation that starts (or the pinned one); a string is why no
    child ran (cancelled, the sandbox or the interpreter failed to start)."""
    level = iso.pinned(isolation) if isolation is not None else iso.current()
    try:
        while True:
            request["confine"] = level.level == "landlock"
            with tempfile.TemporaryDirectory(prefix="neuraldbg-sandbox-", ignore_cleanup_errors=True) as sandbox:
                outcome = _run_child(marshal.dumps(request), sandbox, limits, level, roots,
                                     python=interpreter, cancel=cancel)
            if outcome.cancelled:
                return CANCELLED
            why = _start_failure(outcome, level)
            if why is None:
                return outcome
            if isolation is not None:  # pinned: report, never weaken silently
                return f"the {level.level} sandbox did not start: {why}"
            level = iso.demote(level, why)
    except OSError as exc:  # no temporary directory, no interpreter, no file descriptors left
        return f"cannot start the tracer: {exc}"


def _failed(function: str | None, call: str, error: str) -> Trace:
    return Trace(function=function or _static_callee(call), call=call, backend="exec", status="error", error=error)


def _start_failure(outcome: "_ChildOutcome", level: Isolation) -> str | None:
    """Why the isolation itself failed to start (not the program), or None."""
    stderr = outcome.stderr.decode("utf-8", "replace").strip()
    if level.level == "bwrap" and outcome.returncode == BWRAP_FAILED and stderr.startswith("bwrap:"):
        return stderr.splitlines()[0]
    if level.level == "landlock" and outcome.returncode == EXIT_CONFINE_FAILED and RESULT_MARKER not in outcome.stdout:
        return stderr.splitlines()[-1] if stderr else "confinement failed"
    return None


def run_traces(jobs: list[Job], limits: Limits = Limits(), workers: int = 2,
               isolation: Level | None = None) -> list[Trace]:
    """Run many traces, ``workers`` children at a time; results in job order."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")

    def one(job: Job) -> Trace:
        source, call, function, path = job
        return run_trace(source, call, function=function, path=path, limits=limits, isolation=isolation)

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="neuraldbg-tracer") as pool:
        return list(pool.map(one, jobs))


# -- the child process ---------------------------------------------------


def _child_env(sandbox: str) -> dict[str, str]:
    """A clean environment: no secrets from ours, a fixed hash seed (the
    reason the child does not run with -I, which ignores PYTHONHASHSEED),
    temporary files inside the sandbox."""
    return {
        "PYTHONHASHSEED": "0",
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": sandbox,
        "TMPDIR": sandbox,
        "LANG": "C.UTF-8",
        "MALLOC_ARENA_MAX": "2",  # per-thread malloc arenas would eat the address-space limit
    }


def _command(sandbox: str, level: Isolation, python: Interpreter, roots: tuple[str, ...]) -> list[str]:
    command = [python.executable, *python.flags(), "-X", "utf8", str(CHILD_SCRIPT)]
    if level.level != "bwrap":
        return command
    # The interpreter, what it imports, and the user's package roots (its other modules).
    readable = [str(CHILD_SCRIPT.parent), *python.readable(), *roots]
    return iso.bwrap_command(command, sandbox, readable)


def _run_child(request: bytes, sandbox: str, limits: Limits, level: Isolation, roots: tuple[str, ...], *,
               python: Interpreter, cancel: Cancellable | None = None) -> _ChildOutcome:
    command = _command(sandbox, level, python, roots)
    started = time.monotonic()
    if cancel is not None and cancel.cancelled:  # stale before it started: start nothing
        return _ChildOutcome(None, b"", b"", False, False, 0.0, cancelled=True)
    proc = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=sandbox,
        env=_child_env(sandbox),
        start_new_session=True,  # its own process group, no controlling terminal
        close_fds=True,
    )
    deadline = started + limits.wall_seconds + KILL_GRACE_SECONDS
    stdout = bytearray()
    stderr = bytearray()
    timed_out = overflow = cancelled = False
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    with selectors.DefaultSelector() as selector:
        pending = memoryview(request)
        os.set_blocking(proc.stdin.fileno(), False)
        selector.register(proc.stdin, selectors.EVENT_WRITE)
        selector.register(proc.stdout, selectors.EVENT_READ, (stdout, MAX_RESULT_BYTES))
        selector.register(proc.stderr, selectors.EVENT_READ, (stderr, MAX_STDERR_BYTES))
        while selector.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                break
            if cancel is not None and cancel.cancelled:
                cancelled = True
                break
            for key, _ in selector.select(remaining if cancel is None else min(remaining, CANCEL_POLL_SECONDS)):
                if key.fileobj is proc.stdin:
                    try:
                        written = os.write(key.fd, pending)
                    except (BrokenPipeError, BlockingIOError) as exc:
                        written = len(pending) if isinstance(exc, BrokenPipeError) else 0
                    pending = pending[written:]
                    if not pending:
                        selector.unregister(proc.stdin)
                        proc.stdin.close()
                    continue
                chunk = os.read(key.fd, 1 << 16)
                if not chunk:
                    selector.unregister(key.fileobj)
                    continue
                buffer, cap = key.data
                if len(buffer) < cap:
                    buffer += chunk[: cap - len(buffer)]
                elif key.fileobj is proc.stdout:
                    overflow = True  # a result this large is not worth waiting for
            if overflow:
                break
    if timed_out or overflow or cancelled:
        _kill_group(proc)
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if not stream.closed:
            stream.close()
    # the child may have closed its pipes and kept running
    if not (timed_out or cancelled) and not _exited(proc, max(deadline - time.monotonic(), 1.0), cancel):
        cancelled = cancel is not None and cancel.cancelled
        timed_out = not cancelled
        _kill_group(proc)
    returncode = proc.wait()
    if level.level == "bwrap" and returncode is not None and 128 < returncode <= 128 + 64:
        returncode = 128 - returncode  # bwrap reports the child's death by signal N as exit code 128+N
    return _ChildOutcome(returncode, bytes(stdout), bytes(stderr), timed_out, overflow, time.monotonic() - started,
                         cancelled=cancelled)


def _exited(proc: subprocess.Popen[bytes], seconds: float, cancel: Cancellable | None) -> bool:
    """Wait up to ``seconds`` for the child to exit, looking at ``cancel``
    every CANCEL_POLL_SECONDS; False when it is still running (time is up or
    the run was cancelled)."""
    end = time.monotonic() + seconds
    while True:
        left = end - time.monotonic()
        try:
            proc.wait(timeout=max(left if cancel is None else min(left, CANCEL_POLL_SECONDS), 0.0))
            return True
        except subprocess.TimeoutExpired:
            if time.monotonic() >= end or (cancel is not None and cancel.cancelled):
                return False


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.kill()
    except ProcessLookupError:
        pass


# -- the result -------------------------------------------------------------


def _to_trace(outcome: _ChildOutcome, source: str, call: str, function: str | None, limits: Limits) -> Trace:
    stderr = outcome.stderr.decode("utf-8", "replace")
    if stderr.strip():
        logger.debug("tracer child stderr for %s: %s", call, stderr.strip())
    trace = Trace(function=function or _static_callee(call), call=call, backend="exec", predicted=False)
    try:
        result = None if outcome.overflow else _parse_result(outcome.stdout)
    except _Malformed as exc:
        return _failed(trace.function, call, f"tracer child returned a malformed result ({exc})")
    if result is None:
        if outcome.timed_out:
            trace.status, trace.stop = "truncated", "time-limit"
            trace.error = f"timed out after {limits.wall_seconds:g} s (the program may not halt)"
        elif outcome.overflow:
            trace.status = "error"
            trace.error = f"the trace was larger than {MAX_RESULT_BYTES // (1024 * 1024)} MiB"
        else:
            trace.status, trace.error, trace.stop = _why_no_result(outcome, stderr, limits)
        return trace
    try:
        decode = _FrameDecoder(_LINE_BREAK.split(source))
        trace.frames = [decode(raw) for raw in result.get("frames", [])]
        error = result.get("error")
        trace.error = None if error is None else _text(error)
        trace.status, trace.stop = _CHILD_STATUSES.get(result.get("status"), ("error", None))
        if result.get("status") == "truncated" and trace.error is not None and trace.error.startswith(_TIME_LIMITS):
            trace.stop = "time-limit"
        trace.stdout = str(result.get("stdout") or "")
        if function is None and result.get("function"):
            trace.function = str(result["function"])  # derived by the child from the real callee
        if result.get("stderr"):
            logger.debug("traced program wrote to stderr: %s", result["stderr"])
    except (TypeError, ValueError, KeyError, IndexError, AttributeError, RecursionError, MemoryError) as exc:
        return _failed(trace.function, call,
                       f"tracer child returned a malformed result ({type(exc).__name__}: {str(exc)[:200]})")
    return trace


class _Malformed(Exception):
    """What came back on the result channel is not a result."""


def _parse_result(stdout: bytes) -> dict[str, Any] | None:
    """The child's result: None when there is none, ``_Malformed`` when what
    follows the marker is not one (truncated, not JSON, absurdly nested)."""
    at = stdout.rfind(RESULT_MARKER)
    if at < 0:
        return None
    try:  # the C decoder bounds its own recursion (RecursionError on absurd nesting)
        result = json.loads(stdout[at + len(RESULT_MARKER) :])
    except (ValueError, RecursionError, MemoryError) as exc:
        raise _Malformed(f"not JSON ({type(exc).__name__}: {str(exc)[:200]})") from None
    if not isinstance(result, dict):
        raise _Malformed(f"a JSON {type(result).__name__}, not an object")
    return result


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


# The child's statuses: the recorder's two frame-budget stops (see
# recorder.py) and the rest as they are; a "truncated" from the child's
# timers starts with one of _TIME_LIMITS (child.py writes them).
_CHILD_STATUSES: dict[object, tuple[TraceStatus, StopKind | None]] = {
    "complete": ("complete", None),
    "error": ("error", None),
    "truncated": ("truncated", None),
    "stopped": ("truncated", "frame-budget"),
    "looping": ("truncated", "cycle"),
}
_TIME_LIMITS = ("timed out after", "CPU time limit")


class _FrameDecoder:
    """Frames from the child's compact ones (only the locals that changed
    since the previous frame at the same depth, see recorder.py), held
    compactly: an unchanged repr is one string shared by every frame that
    has it, equal strings (names, functions, values) are one object, and a
    frame whose locals did not change shares its dict with the previous one."""

    def __init__(self, lines: list[str]) -> None:
        self._lines = lines
        self._scopes: dict[int, dict[str, str]] = {}  # depth -> the locals of its last frame
        self._strings: dict[str, str] = {}

    def _one(self, value: object) -> str:
        text = _text(value)
        return self._strings.setdefault(text, text)

    def __call__(self, raw: list[Any]) -> Frame:
        event, line, function, depth, changed, value, *rest = raw
        if event not in EVENTS:
            raise ValueError(f"unknown event {event!r}")
        if len(rest) > 1:
            raise ValueError(f"a frame of {len(raw)} items")
        event = EVENTS[EVENTS.index(event)]  # one string per event kind, not one per frame
        line, depth = int(line), int(depth)
        changed = dict(changed)
        gone = list(rest[0]) if rest else []
        base = self._scopes.get(depth) if event != "call" else None
        if base is not None and not changed and not gone:
            local_vars = base
        else:
            local_vars = dict(base) if base is not None else {}
            for name in gone:
                local_vars.pop(_text(name), None)
            one = self._one
            for name, text in changed.items():
                local_vars[one(name)] = one(text)
        self._scopes[depth] = local_vars
        return Frame(
            event=event,
            line=line,
            function=self._one(function),
            depth=depth,
            locals=local_vars,
            value=None if value is None else self._one(value),
            source=self._lines[line - 1] if 0 < line <= len(self._lines) else "",
        )


def _why_no_result(outcome: _ChildOutcome, stderr: str, limits: Limits) -> tuple[TraceStatus, str, StopKind | None]:
    code = outcome.returncode
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        cpu = limits.cpu_seconds or limits.wall_seconds
        if code == -signal.SIGXCPU or (code == -signal.SIGKILL and outcome.elapsed >= cpu):
            return "truncated", f"CPU time limit of {cpu:g} s exceeded (the program may not halt)", "time-limit"
        return "error", f"the program crashed (killed by {name})", None
    last = stderr.strip().splitlines()[-1] if stderr.strip() else ""
    if last:
        return "error", f"the tracer child exited with code {code} without a result: {last}", None
    return "error", f"the program ended the process (exit code {code}) before the call returned", None


def _static_callee(call: str) -> str:
    """The callee of ``call`` as written (``f``, ``Stack.push``), for naming
    the trace before (or without) the child's answer."""
    try:
        node = ast.parse(call.strip(), mode="eval").body
    except SyntaxError:
        return call.strip().split("(", 1)[0].strip() or call
    if isinstance(node, ast.Call):
        return ast.unparse(node.func)
    return call.strip()

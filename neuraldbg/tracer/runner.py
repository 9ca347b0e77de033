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
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from neuraldbg.trace.frames import EVENTS, Frame, Trace, TraceStatus
from neuraldbg.tracer.limits import Limits

logger = logging.getLogger(__name__)

CHILD_SCRIPT = Path(__file__).with_name("child.py")
RESULT_MARKER = b"\n--neuraldbg-result--\n"  # must match child.py
KILL_GRACE_SECONDS = 2.0  # the child stops itself at wall_seconds; the parent kills it this much later
MAX_RESULT_BYTES = 64 * 1024 * 1024  # a bigger trace is not worth holding in an editor process
MAX_STDERR_BYTES = 64 * 1024
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


def run_trace(
    source: str,
    call: str,
    *,
    function: str | None = None,
    path: str = "<string>",
    limits: Limits = Limits(),
) -> Trace:
    """Execute ``call`` against the module ``source`` (compiled as ``path``)
    in a sandboxed child and return the executed trace.

    Never raises for anything the traced program does: failures are in
    ``trace.error`` / ``trace.status``. ``function`` is the entry's qualified
    name; None derives it from the callee of ``call``.
    """
    if not isinstance(source, str) or not isinstance(call, str):
        raise TypeError(f"source and call must be str, got {type(source).__name__} and {type(call).__name__}")
    request = {
        "source": source,
        "call": call,
        "function": function,
        "path": path,
        "limits": asdict(limits),
        "sys_path": _importable_paths(),
    }
    try:
        with tempfile.TemporaryDirectory(prefix="neuraldbg-sandbox-", ignore_cleanup_errors=True) as sandbox:
            outcome = _run_child(marshal.dumps(request), sandbox, limits)
    except OSError as exc:  # no temporary directory, no interpreter, no file descriptors left
        return Trace(
            function=function or _static_callee(call),
            call=call,
            backend="exec",
            status="error",
            error=f"cannot start the tracer: {exc}",
        )
    return _to_trace(outcome, source, call, function, limits)


def run_traces(jobs: list[Job], limits: Limits = Limits(), workers: int = 2) -> list[Trace]:
    """Run many traces, ``workers`` children at a time; results in job order."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")

    def one(job: Job) -> Trace:
        source, call, function, path = job
        return run_trace(source, call, function=function, path=path, limits=limits)

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


def _importable_paths() -> list[str]:
    """Our import path (site-packages, editable installs) for the child,
    which starts without ``site`` for speed."""
    cwd = os.getcwd()
    return [p for p in sys.path if p and p not in (".", cwd) and os.path.exists(p)]


def _run_child(request: bytes, sandbox: str, limits: Limits) -> _ChildOutcome:
    command = [sys.executable or "python3", "-s", "-S", "-P", "-X", "utf8", str(CHILD_SCRIPT)]
    started = time.monotonic()
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
    timed_out = overflow = False
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
            for key, _ in selector.select(remaining):
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
    if timed_out or overflow:
        _kill_group(proc)
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if not stream.closed:
            stream.close()
    try:  # the child may have closed its pipes and kept running
        returncode = proc.wait(timeout=None if timed_out else max(deadline - time.monotonic(), 1.0))
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_group(proc)
        returncode = proc.wait()
    return _ChildOutcome(returncode, bytes(stdout), bytes(stderr), timed_out, overflow, time.monotonic() - started)


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
    result = None if outcome.overflow else _parse_result(outcome.stdout)
    if result is None:
        if outcome.timed_out:
            trace.status = "truncated"
            trace.error = f"timed out after {limits.wall_seconds:g} s (the program may not halt)"
        elif outcome.overflow:
            trace.status = "error"
            trace.error = f"the trace was larger than {MAX_RESULT_BYTES // (1024 * 1024)} MiB"
        else:
            trace.status, trace.error = _why_no_result(outcome, stderr, limits)
        return trace
    try:
        lines = _LINE_BREAK.split(source)
        trace.frames = [_frame(raw, lines) for raw in result.get("frames", [])]
        status = result.get("status", "error")
        trace.status = status if status in ("complete", "truncated", "error") else "error"
        trace.error = result.get("error")
        trace.stdout = str(result.get("stdout") or "")
        if function is None and result.get("function"):
            trace.function = str(result["function"])  # derived by the child from the real callee
        if result.get("stderr"):
            logger.debug("traced program wrote to stderr: %s", result["stderr"])
    except (TypeError, ValueError, KeyError, IndexError) as exc:
        return Trace(
            function=trace.function,
            call=call,
            backend="exec",
            status="error",
            error=f"tracer child returned a malformed result ({type(exc).__name__}: {exc})",
        )
    return trace


def _parse_result(stdout: bytes) -> dict[str, Any] | None:
    at = stdout.rfind(RESULT_MARKER)
    if at < 0:
        return None
    try:
        result = json.loads(stdout[at + len(RESULT_MARKER) :])
    except ValueError:
        return None
    return result if isinstance(result, dict) else None


def _frame(raw: list[Any], lines: list[str]) -> Frame:
    event, line, function, depth, local_vars, value = raw
    if event not in EVENTS:
        raise ValueError(f"unknown event {event!r}")
    line = int(line)
    return Frame(
        event=event,
        line=line,
        function=str(function),
        depth=int(depth),
        locals={str(k): str(v) for k, v in dict(local_vars).items()},
        value=None if value is None else str(value),
        source=lines[line - 1] if 0 < line <= len(lines) else "",
    )


def _why_no_result(outcome: _ChildOutcome, stderr: str, limits: Limits) -> tuple[TraceStatus, str]:
    code = outcome.returncode
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        if code == -signal.SIGXCPU or (code == -signal.SIGKILL and outcome.elapsed >= limits.cpu_seconds):
            return "truncated", f"CPU time limit of {limits.cpu_seconds:g} s exceeded (the program may not halt)"
        return "error", f"the program crashed (killed by {name})"
    last = stderr.strip().splitlines()[-1] if stderr.strip() else ""
    if last:
        return "error", f"the tracer child exited with code {code} without a result: {last}"
    return "error", f"the program ended the process (exit code {code}) before the call returned"


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

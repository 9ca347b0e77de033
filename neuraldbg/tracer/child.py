"""The sandboxed tracer child: one traced call, a request in, a JSON result out.

Started by :mod:`neuraldbg.tracer.runner` as a script (``python -s -S -P -X
utf8 child.py``, cwd = a fresh sandbox directory), so it uses the standard
library only and loads its sibling modules by path. Order matters: read the
request, take over stdio, set limits and timers, then install the sandbox
hook, and only then run any of the user's code.

Start-up is most of the cost of a short trace, so the child imports the C
modules under ``ast``, ``json`` and ``signal`` (``_ast``, ``_json``,
``_signal``) rather than those modules, which pull in ``re``, ``enum`` and
``contextlib`` and would double its CPU time. The request comes as
:mod:`marshal` data (from the parent, the same interpreter; never the other
way: the parent reads only JSON from the child).
"""

from __future__ import annotations

import _ast
import _signal
import io
import marshal
import os
import sys
import types

TYPE_CHECKING = False  # typing costs startup; mypy still reads the block below
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

RESULT_MARKER = b"\n--neuraldbg-result--\n"  # the parent reads what follows the last one
OUTPUT_CAP = 100_000  # characters of the program's stdout/stderr kept
CALL_FILENAME = "<call>"  # code from the call string is never traced
SETUP_FILENAME = "<doctest set-up>"  # nor is the set-up run before it
SWALLOWED_HALT_GRACE = 0.5  # seconds a program may run on after swallowing a Halt
EXIT_NO_RESULT = 70  # the child failed to produce a result; stderr says why
EXIT_CONFINE_FAILED = 71  # Landlock/seccomp could not be applied: the parent falls back a level


def _load_siblings(*names: str) -> list[types.ModuleType]:
    """Import the tracer's standard-library-only modules next to this file
    (cached bytecode, no importlib.util), then rename them so that they can
    never shadow a module of the user's called ``sandbox`` or ``reprs``."""
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, here)
    try:
        modules = [__import__(name) for name in names]
    finally:
        sys.path.remove(here)
    for name, module in zip(names, modules):
        sys.modules[f"_neuraldbg_tracer_{name}"] = sys.modules.pop(name)
    return modules


class CappedText(io.TextIOBase):
    """A text stream that keeps the first ``cap`` characters written to it."""

    def __init__(self, cap: int) -> None:
        super().__init__()
        self._cap = cap
        self._parts: list[str] = []
        self._size = 0
        self._dropped = 0

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        room = self._cap - self._size
        kept = text[: max(room, 0)]
        if kept:
            self._parts.append(kept)
            self._size += len(kept)
        self._dropped += len(text) - len(kept)
        return len(text)

    def getvalue(self) -> str:
        text = "".join(self._parts)
        return f"{text}…<+{self._dropped} chars>" if self._dropped else text


class UserError(Exception):
    """The user's file or call could not be run; the message is for the user."""


def describe(exc: BaseException) -> str:
    """``ExcType: first line of the message`` (never raises)."""
    try:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    except BaseException:
        message = ""
    name = type(exc).__name__
    text = f"{name}: {message}" if message else name
    return text if len(text) <= 500 else text[:500] + "…"


class ChildRun:
    """One request, from its arrival to the written result."""

    def __init__(self, request: dict[str, Any], result_fd: int) -> None:
        self.source: str = request["source"]
        self.call: str = request["call"]
        self.path: str = request["path"]
        self.limits: dict[str, Any] = request["limits"]
        self.extra_path: list[str] = request.get("sys_path", [])
        self.module_name: str = request.get("module") or "program"  # dotted, as Python would import the file
        self.roots: list[str] = request.get("roots", [])  # sys.path folders for it (its package root first)
        self.result_fd = result_fd
        self.stdout = CappedText(OUTPUT_CAP)
        self.stderr = CappedText(OUTPUT_CAP)
        self.function: str | None = request.get("function")
        self.confine: bool = bool(request.get("confine"))
        self.setup: str = request.get("setup") or ""  # a doctest's earlier examples, at their file lines
        self.recorder: Any = None  # recorder.Recorder once the source parsed
        self.halt_type: type[BaseException] = BaseException
        self.encode: Callable[[object], str] | None = None  # encode.dumps once loaded
        self._finishing = False

    # -- result --------------------------------------------------------
    def finish(self, status: str, error: str | None) -> None:
        """Write the result and end the process (no atexit, no thread joins)."""
        if self._finishing:
            return
        self._finishing = True
        _signal.setitimer(_signal.ITIMER_REAL, 0)
        _signal.setitimer(_signal.ITIMER_PROF, 0)
        sys.settrace(None)
        if self.encode is None:  # failed before start-up completed: stderr says why
            os._exit(EXIT_NO_RESULT)
        frames = self.recorder.frames if self.recorder is not None else []
        payload = {
            "status": status,
            "error": error,
            "function": self.function,
            "frames": frames,
            "stdout": self.stdout.getvalue(),
            "stderr": self.stderr.getvalue(),
        }
        try:
            text = self.encode(payload)
        except MemoryError:  # the program left no room: say so rather than nothing
            count = len(frames)
            frames.clear()
            payload.update(status="error", error=f"the trace of {count} frames did not fit in memory")
            try:
                text = self.encode(payload)
            except BaseException:
                os._exit(EXIT_NO_RESULT)
        except BaseException as exc:
            os.write(2, f"cannot encode the result: {describe(exc)}\n".encode("utf-8", "replace"))
            os._exit(EXIT_NO_RESULT)
        data = RESULT_MARKER + text.encode("ascii") + b"\n"
        view = memoryview(data)
        while view:
            view = view[os.write(self.result_fd, view) :]
        os._exit(0)

    # -- limits --------------------------------------------------------
    def on_limit(self, status: str, error: str) -> None:
        """A timer fired: unwind the program, or if it swallowed an earlier
        Halt (or is not being traced), end it right here."""
        if self._finishing:
            return
        recorder = self.recorder
        if recorder is None or recorder.stop_reason is not None:
            reason = recorder.stop_reason if recorder is not None and recorder.stop_reason else (status, error)
            self.finish(*reason)
        _signal.setitimer(_signal.ITIMER_REAL, SWALLOWED_HALT_GRACE)
        recorder.halt(status, error)

    def arm_timers(self) -> None:
        wall = float(self.limits["wall_seconds"])
        cpu = float(self.limits["cpu_seconds"])
        timeout = f"timed out after {wall:g} s (the program may not halt)"
        cpu_out = f"CPU time limit of {cpu:g} s exceeded (the program may not halt)"
        _signal.signal(_signal.SIGALRM, lambda signum, frame: self.on_limit("truncated", timeout))
        _signal.signal(_signal.SIGPROF, lambda signum, frame: self.on_limit("truncated", cpu_out))
        _signal.signal(_signal.SIGXCPU, lambda signum, frame: self.on_limit("truncated", cpu_out))
        _signal.signal(_signal.SIGXFSZ, _signal.SIG_IGN)  # a too-large write fails with EFBIG instead
        _signal.setitimer(_signal.ITIMER_REAL, wall)
        _signal.setitimer(_signal.ITIMER_PROF, cpu)

    # -- the run -------------------------------------------------------
    def run(self) -> None:
        sandbox, recorder_module, reprs, encode = _load_siblings("sandbox", "recorder", "reprs", "encode")
        self.encode = encode.dumps
        self.halt_type = recorder_module.Halt
        self._extend_sys_path()
        sandbox.apply_resource_limits(
            int(self.limits["memory_mb"]), float(self.limits["cpu_seconds"]), int(self.limits["max_file_mb"])
        )
        if self.confine:
            self._confine()
        self.arm_timers()
        try:
            code, def_lines = self._compile()
            renderer = reprs.Renderer(int(self.limits["max_repr"]))
            self.recorder = recorder_module.Recorder(
                self.path, int(self.limits["max_frames"]), renderer.render, def_lines
            )
            sandbox.install(os.getcwd())
            # From here on everything may run user code.
            sys.stdin, sys.stdout, sys.stderr = io.StringIO(""), self.stdout, self.stderr
            _ignore_breakpoints()
            namespace = self._load_module(code)
            self._run_setup(namespace)
            call_code, temps = self._prepare_call(namespace)
        except UserError as exc:
            self.finish("error", str(exc))
            return
        except self.halt_type:
            self.finish(*self.recorder.stop_reason)
            return
        self._traced_call(call_code, namespace, temps)

    def _confine(self) -> None:
        """Landlock + seccomp on this process, or exit for the parent to fall back."""
        try:
            (confine,) = _load_siblings("confine")
            confine.apply(os.getcwd())
        except Exception as exc:
            os.write(2, f"cannot confine the tracer child: {describe(exc)}\n".encode("utf-8", "replace"))
            os._exit(EXIT_CONFINE_FAILED)

    def _extend_sys_path(self) -> None:
        sys.dont_write_bytecode = True  # no __pycache__ next to the user's files
        here = os.path.dirname(os.path.abspath(__file__))
        # Python before 3.11 has no -P: the script's folder (ours) came first.
        sys.path[:] = [entry for entry in sys.path if os.path.abspath(entry or ".") != here]
        sys.path[0:0] = [root for root in self.roots if root not in sys.path]
        for entry in self.extra_path:
            if entry not in sys.path:
                sys.path.append(entry)

    def _compile(self) -> tuple[types.CodeType, dict[int, int]]:
        try:
            tree = compile(self.source, self.path, "exec", _ast.PyCF_ONLY_AST, dont_inherit=True)
            code = compile(tree, self.path, "exec", dont_inherit=True)
        except SyntaxError as exc:
            where = f" at line {exc.lineno}" if exc.lineno else ""
            raise UserError(f"syntax error{where}: {exc.msg}") from None
        except (ValueError, RecursionError, MemoryError) as exc:  # null bytes, absurd nesting
            raise UserError(f"cannot compile {self.path}: {describe(exc)}") from None
        def_lines: dict[int, int] = {}
        for node in _walk(tree):
            if isinstance(node, (_ast.FunctionDef, _ast.AsyncFunctionDef, _ast.ClassDef)) and node.decorator_list:
                def_lines[node.decorator_list[0].lineno] = node.lineno
        return code, def_lines

    def _load_module(self, code: types.CodeType) -> dict[str, Any]:
        """Run the editor's text as the module ``self.module_name``, the way
        importlib would load that file: its parent packages imported first,
        ``__name__``, ``__package__`` and ``__spec__`` set (relative imports
        work; a ``__main__`` guard stays shut), registered in sys.modules."""
        name = self.module_name
        parent = name.rpartition(".")[0]
        try:
            if parent:  # user code: the packages' __init__ files
                __import__(parent)
            module = _new_module(name, self.path)
            # Registered so that pickle, dataclasses and typing find it, unless a
            # top-level name would shadow a module the standard library imports.
            if parent or (name not in sys.modules and name not in sys.stdlib_module_names):
                sys.modules[name] = module
                if parent:
                    setattr(sys.modules[parent], name.rpartition(".")[2], module)
            exec(code, module.__dict__)
        except self.halt_type:
            raise
        except BaseException as exc:
            raise UserError(describe(exc)) from None
        return module.__dict__

    def _run_setup(self, namespace: dict[str, Any]) -> None:
        """Run the set-up code (untraced: the recorder has not started) in the
        module's namespace; a failure names its line, which is the file's."""
        if not self.setup.strip():
            return
        try:
            exec(compile(self.setup, SETUP_FILENAME, "exec", dont_inherit=True), namespace)
        except self.halt_type:
            raise
        except BaseException as exc:
            line = exc.lineno if isinstance(exc, SyntaxError) else _last_line_in(exc, SETUP_FILENAME)
            where = f" line {line}" if line else ""
            raise UserError(f"doctest set-up{where} failed: {describe(exc)}") from None

    def _prepare_call(self, namespace: dict[str, Any]) -> tuple[types.CodeType, dict[str, Any]]:
        """Evaluate the callee and the arguments (untraced) into temporaries,
        and compile the call itself over them, so that ``f(*a, **k)`` keeps
        Python's own semantics."""
        text = self.call.strip()
        try:
            tree = compile(text, CALL_FILENAME, "eval", _ast.PyCF_ONLY_AST, dont_inherit=True)
        except SyntaxError as exc:
            raise UserError(f"invalid call {self.call!r}: {exc.msg}") from None
        except ValueError as exc:  # null bytes
            raise UserError(f"invalid call {self.call!r}: {exc}") from None
        node = tree.body
        if not isinstance(node, _ast.Call):
            raise UserError(f"invalid call {self.call!r}: expected one function call, like f(1, 2)")
        temps: dict[str, Any] = {}

        def hoist(expr: _ast.expr) -> _ast.Name:
            name = f"__neuraldbg_{len(temps)}"
            try:
                value = eval(compile(_ast.Expression(expr), CALL_FILENAME, "eval"), namespace)
            except self.halt_type:
                raise
            except BaseException as exc:
                raise UserError(f"{describe(exc)} (while evaluating {_segment(text, expr)!r} of the call)") from None
            temps[name] = value
            return _ast.Name(
                id=name,
                ctx=_ast.Load(),
                lineno=expr.lineno,
                col_offset=expr.col_offset,
                end_lineno=expr.end_lineno,
                end_col_offset=expr.end_col_offset,
            )

        callee = node.func = hoist(node.func)
        for arg in node.args:
            if isinstance(arg, _ast.Starred):
                arg.value = hoist(arg.value)
        node.args = [arg if isinstance(arg, _ast.Starred) else hoist(arg) for arg in node.args]
        for keyword in node.keywords:
            keyword.value = hoist(keyword.value)
        if self.function is None:
            self.function = _qualname_of(temps[callee.id]) or _segment(text, tree.body.func)
        return compile(tree, CALL_FILENAME, "eval"), temps

    def _traced_call(self, call_code: types.CodeType, namespace: dict[str, Any], temps: dict[str, Any]) -> None:
        recorder = self.recorder
        raised: BaseException | None = None
        result: object = None  # kept alive until tracing stops: no traced __del__ or generator close
        recorder.start()
        try:
            result = eval(call_code, namespace, temps)
        except self.halt_type:
            pass
        except BaseException as exc:
            raised = exc
        finally:
            alive = recorder.stop()
        if recorder.stop_reason is not None:
            self.finish(*recorder.stop_reason)
        error = describe(raised) if raised is not None else None
        if not alive and recorder.active:
            try:
                recovered = raised is not None and recorder.unwind_from(raised)
            except self.halt_type:
                self.finish(*recorder.stop_reason)
                return
            if not recovered:
                self.finish(
                    "truncated",
                    "tracing stopped early (the program switched sys.settrace off,"
                    " or the tracer hit the recursion limit)",
                )
        if not recorder.frames:
            if isinstance(result, (types.GeneratorType, types.CoroutineType, types.AsyncGeneratorType)):
                kind = type(result).__name__.replace("async_generator", "async generator")
                self.finish("error", f"the call {self.call} returned a {kind} without running it")
            why = f" ({error})" if error else ""
            self.finish("error", f"the call {self.call} ran no function defined in {self.path}{why}")
        self.finish("complete", error)


def _no_breakpoint(*args: object, **kwargs: object) -> None:
    """``breakpoint()`` in traced code: nothing. Its line is recorded like any
    other; pdb would read commands from a stdin that has none (BdbQuit) and
    the run would end at the first breakpoint."""


def _ignore_breakpoints() -> None:
    # The hook is what breakpoint() calls; PYTHONBREAKPOINT=0 also disarms
    # sys.__breakpointhook__, should the program put the default back.
    sys.breakpointhook = _no_breakpoint
    os.environ["PYTHONBREAKPOINT"] = "0"


def _walk(node: _ast.AST) -> list[_ast.AST]:
    """Every node under ``node`` (ast.walk without importing ast)."""
    found: list[_ast.AST] = []
    todo = [node]
    while todo:
        current = todo.pop()
        found.append(current)
        for field in current._fields:
            child = getattr(current, field, None)
            if isinstance(child, _ast.AST):
                todo.append(child)
            elif isinstance(child, list):
                todo.extend(item for item in child if isinstance(item, _ast.AST))
    return found


def _last_line_in(exc: BaseException, filename: str) -> int | None:
    """The line of the innermost traceback entry of ``exc`` in code compiled as ``filename``."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _segment(text: str, node: _ast.AST) -> str:
    """The source text of ``node`` in ``text`` (offsets are UTF-8 bytes)."""
    lines = text.encode("utf-8").splitlines(keepends=True)
    start, end = node.lineno - 1, node.end_lineno - 1  # type: ignore[attr-defined]
    if start == end:
        chunk = lines[start][node.col_offset : node.end_col_offset]  # type: ignore[attr-defined]
    else:
        chunk = lines[start][node.col_offset :] + b"".join(lines[start + 1 : end])  # type: ignore[attr-defined]
        chunk += lines[end][: node.end_col_offset]  # type: ignore[attr-defined]
    return chunk.decode("utf-8", "replace")


def _new_module(name: str, path: str) -> types.ModuleType:
    """An empty module for the file ``path`` named ``name``, with the
    attributes importlib gives it (``__spec__``, ``__loader__``,
    ``__package__``, ``__file__``, ``__path__`` for a package); the already
    loaded bootstrap modules, not importlib.util (4 ms of imports)."""
    import _frozen_importlib
    import _frozen_importlib_external

    spec = _frozen_importlib_external.spec_from_file_location(name, path)
    if spec is None:  # a name no loader knows (an unsaved buffer, <string>): a plain module
        module = types.ModuleType(name)
        module.__file__ = path
        return module
    return _frozen_importlib.module_from_spec(spec)


def _qualname_of(callee: object) -> str | None:
    """The qualified name of the Python function a call of ``callee`` runs."""
    try:
        return _code_qualname(callee)
    except Exception:  # an odd callable (a __getattr__ that raises, ...): name it as written
        return None


def _code_qualname(callee: object) -> str | None:
    target: Any = callee
    if isinstance(callee, type):
        target = callee.__dict__.get("__init__") or getattr(callee, "__init__", None)
    elif not hasattr(callee, "__code__") and not hasattr(callee, "__func__"):
        target = getattr(type(callee), "__call__", None)
    target = getattr(target, "__func__", target)
    code = getattr(target, "__code__", None)
    if not isinstance(code, types.CodeType):
        return None
    qualname = getattr(code, "co_qualname", None) or getattr(target, "__qualname__", code.co_name)  # 3.11+, 3.10
    return str(qualname).replace(".<locals>", "")


def main() -> None:
    request = marshal.loads(sys.stdin.buffer.read())
    # The result goes to a private copy of stdout; fd 0/1 become /dev/null so
    # neither the program nor C code can read the request pipe or write into
    # the result stream by accident.
    result_fd = os.dup(1)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.close(null)
    run: Any = ChildRun(request, result_fd)
    if request.get("calls") is not None:  # batch mode: many calls in this one child (batch_child.py)
        (batch_child,) = _load_siblings("batch_child")
        run = batch_child.BatchRun(request, result_fd, run, _load_siblings, UserError, describe)
    try:
        run.run()
    except BaseException as exc:  # a bug in the tracer, not in the program
        import traceback

        os.write(2, traceback.format_exc().encode("utf-8", "replace"))
        run.finish("error", f"tracer child failed: {describe(exc)}")


if __name__ == "__main__":
    main()

"""The child's sandbox: resource limits and an audit hook.

Standard library only: the sandboxed child loads this file directly, and
nothing here may run in the parent process (an audit hook cannot be removed).

What it stops: new processes (fork, exec, spawn, system, subprocess), network
use, writing/creating/removing/renaming files outside the sandbox directory,
ctypes and other modules that reach under the interpreter, signals to other
processes, raising the resource limits. Blocked operations raise
``PermissionError("neuraldbg sandbox: <event> is not allowed ...")`` (an
``ImportError`` for blocked imports) inside the traced program.

Audit hooks are a guard against programs that do harm through the normal
APIs (mistakes, curious scripts), not a security boundary against a program
written to escape: run untrusted code inside a container or VM as well.
"""

from __future__ import annotations

import os
import resource
import sys

TYPE_CHECKING = False  # typing costs the child's startup; mypy still reads the block below
if TYPE_CHECKING:
    from collections.abc import Callable

_MB = 1024 * 1024

# Events denied whatever their arguments.
_DENIED_EVENTS = frozenset(
    {
        "os.fork",
        "os.forkpty",
        "os.system",
        "os.exec",
        "os.spawn",
        "os.posix_spawn",
        "os.killpg",
        "subprocess.Popen",
        "pty.spawn",
        "socket.connect",
        "socket.bind",
        "socket.sendto",
        "socket.sendmsg",
        "socket.getaddrinfo",
        "socket.gethostbyname",
        "socket.gethostbyaddr",
        "socket.getnameinfo",
        "socket.sethostname",
        "resource.setrlimit",
        "resource.prlimit",
        "sqlite3.connect",  # SQLite opens (and ATTACHes) files without the open event
        "sqlite3.enable_load_extension",
        "sqlite3.load_extension",
        "gc.get_objects",  # would hand out the sandbox's own objects
        "gc.get_referrers",
        "gc.get_referents",
        "webbrowser.open",
        "ctypes.dlopen",
        "ctypes.dlsym",
        "ctypes.dlsym/handle",
        "ctypes.cdata",
        "ctypes.cdata/buffer",
        "ctypes.addressof",
        "ctypes.call_function",
        "ctypes.string_at",
        "ctypes.wstring_at",
        "ctypes.PyObj_FromPtr",
        "ctypes.create_string_buffer",
        "ctypes.create_unicode_buffer",
        "ctypes.get_errno",
        "ctypes.set_errno",
        "ctypes.seh_exception",
    }
)

# Modules that reach under the interpreter (raw memory, subinterpreters that
# do not inherit audit hooks) or write files without the open event.
_DENIED_IMPORTS = frozenset(
    {
        "ctypes",
        "_ctypes",
        "_testcapi",
        "_testinternalcapi",
        "_testbuffer",
        "_testmultiphase",
        "_testimportmultiple",
        "_testclinic",
        "_xxsubinterpreters",
        "_xxinterpchannels",
        "_xxtestfuzz",
        "_posixshmem",
        "_dbm",
        "_gdbm",
        "readline",
    }
)

# Functions with no audit event that could harm the machine, by the C module
# that defines them; replaced by stubs that raise (no safe subset is worth
# keeping). ``fork_exec`` is what multiprocessing's spawn calls directly.
_UNAUDITED = (
    ("posix", ("mkfifo", "mknod", "pidfd_open", "chroot")),
    ("_signal", ("pidfd_send_signal",)),
    ("time", ("clock_settime", "clock_settime_ns")),
    ("_posixsubprocess", ("fork_exec",)),
)
# Python modules that copied those functions at import: patched too when
# already imported (importing ``signal`` would cost the child's startup; a
# later import copies the stubs).
_REEXPORTERS = {"posix": "os", "_signal": "signal"}

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC


def denial(what: str, detail: str = "") -> PermissionError:
    return PermissionError(f"neuraldbg sandbox: {what} is not allowed{detail}")


def apply_resource_limits(memory_mb: int, cpu_seconds: float, file_mb: int) -> None:
    """Set the child's rlimits (hard = soft, so the program cannot raise them;
    root could, which is why the audit hook denies resource.setrlimit)."""
    address_space = _current_address_space() + memory_mb * _MB
    _set(resource.RLIMIT_AS, address_space)
    # The precise CPU limit is a timer in the child; this is the backstop for
    # a program stuck in C code where no Python signal handler can run.
    cpu = int(cpu_seconds) + 2
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    _set(resource.RLIMIT_FSIZE, file_mb * _MB)
    _set(resource.RLIMIT_NOFILE, 256)
    _set(resource.RLIMIT_CORE, 0)


def _set(which: int, value: int) -> None:
    soft, hard = resource.getrlimit(which)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(which, (value, value))


def _current_address_space() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 256 * _MB  # a generous guess where /proc is missing


def install(root: str) -> None:
    """Replace the unaudited dangerous functions and add the audit hook.

    Call this last, after everything the child itself needs is imported and
    opened: from here on the process may only write under ``root``.
    """
    _stub_unaudited()
    sys.addaudithook(_make_hook(os.path.realpath(root)))


def _stub_unaudited() -> None:
    for module_name, attributes in _UNAUDITED:
        try:
            modules = [__import__(module_name)]  # C modules: cheap
        except ImportError:
            continue
        reexporter = sys.modules.get(_REEXPORTERS.get(module_name, ""))
        if reexporter is not None:
            modules.append(reexporter)
        for module in modules:
            for attribute in attributes:
                if hasattr(module, attribute):
                    setattr(module, attribute, _stub(f"{module.__name__}.{attribute}"))


def _stub(name: str) -> Callable[..., object]:
    def denied(*args: object, **kwargs: object) -> object:
        raise denial(name)

    denied.__name__ = name.rsplit(".", 1)[-1]
    return denied


def _make_hook(root: str) -> Callable[[str, tuple[object, ...]], None]:
    """The audit hook. It closes over immutable values only, and nothing it
    calls raises audit events itself (realpath, readlink and stat do not)."""
    prefix = root + os.sep
    own_pid = os.getpid()
    denied_events = _DENIED_EVENTS
    denied_imports = _DENIED_IMPORTS

    def resolve(path: object, dir_fd: object = None, follow: bool = True) -> str:
        if isinstance(path, int):  # an open descriptor: where it points
            return os.readlink(f"/proc/self/fd/{path}")
        text = os.fsdecode(os.fspath(path))  # type: ignore[arg-type]
        if not os.path.isabs(text):
            # audit events pass dir_fd=-1 when none was given
            base = os.readlink(f"/proc/self/fd/{dir_fd}") if isinstance(dir_fd, int) and dir_fd >= 0 else os.getcwd()
            text = os.path.join(base, text)
        head, tail = os.path.split(text)
        if follow or tail in ("", ".", ".."):
            return os.path.realpath(text)
        return os.path.join(os.path.realpath(head), tail)  # the link itself, not its target

    def inside(path: object, dir_fd: object = None, follow: bool = True) -> bool:
        try:
            resolved = resolve(path, dir_fd, follow)
        except (OSError, TypeError, ValueError):
            return False
        return resolved == root or resolved.startswith(prefix)

    def check(event: str, path: object, dir_fd: object = None, follow: bool = True) -> None:
        if not inside(path, dir_fd, follow):
            raise denial(event, f" outside the sandbox directory: {path!r}")

    def on_open(args: tuple[object, ...]) -> None:
        path, mode, flags = args[0], args[1], args[2]
        if isinstance(path, int):
            return  # an existing descriptor: its access was checked when it was opened
        writing = (isinstance(flags, int) and flags & _WRITE_FLAGS) or (
            isinstance(mode, str) and any(c in mode for c in "wax+")
        )
        if writing:
            check("open for writing", path)
        elif not inside(path):
            # A directory descriptor outside would let dir_fd= escape the checks.
            try:
                is_dir = os.path.isdir(path)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                is_dir = False
            if is_dir:
                raise denial("opening a directory", f" outside the sandbox directory: {path!r}")

    def on_kill(args: tuple[object, ...]) -> None:
        if args[0] != own_pid:
            raise denial("os.kill", " for other processes")

    def on_import(args: tuple[object, ...]) -> None:
        name = args[0]
        if isinstance(name, str) and name.partition(".")[0] in denied_imports:
            raise ImportError(f"neuraldbg sandbox: import of {name} is not allowed", name=name)

    def first_path(event: str) -> Callable[[tuple[object, ...]], None]:
        return lambda args: check(event, args[0])

    def nofollow_with_dir_fd(event: str, dir_fd_at: int) -> Callable[[tuple[object, ...]], None]:
        return lambda args: check(event, args[0], args[dir_fd_at], follow=False)

    def with_dir_fd(event: str, dir_fd_at: int) -> Callable[[tuple[object, ...]], None]:
        return lambda args: check(event, args[0], args[dir_fd_at])

    def on_rename(args: tuple[object, ...]) -> None:
        check("os.rename", args[0], args[2], follow=False)
        check("os.rename", args[1], args[3], follow=False)

    def on_link(args: tuple[object, ...]) -> None:
        check("os.link", args[0], args[2])
        check("os.link", args[1], args[3], follow=False)

    def second_path(event: str) -> Callable[[tuple[object, ...]], None]:
        return lambda args: check(event, args[1])

    handlers: dict[str, Callable[[tuple[object, ...]], None]] = {
        "open": on_open,
        "os.kill": on_kill,
        "import": on_import,
        "os.remove": nofollow_with_dir_fd("os.remove", 1),
        "os.rmdir": nofollow_with_dir_fd("os.rmdir", 1),
        "os.mkdir": nofollow_with_dir_fd("os.mkdir", 2),
        "os.symlink": lambda args: check("os.symlink", args[1], args[2], follow=False),
        "os.rename": on_rename,
        "os.link": on_link,
        "os.truncate": first_path("os.truncate"),
        "os.chmod": with_dir_fd("os.chmod", 2),
        "os.chown": with_dir_fd("os.chown", 3),
        "os.utime": with_dir_fd("os.utime", 3),
        "os.setxattr": first_path("os.setxattr"),
        "os.removexattr": first_path("os.removexattr"),
        "shutil.copyfile": second_path("shutil.copyfile"),
        "shutil.copymode": second_path("shutil.copymode"),
        "shutil.copystat": second_path("shutil.copystat"),
        "shutil.copytree": second_path("shutil.copytree"),
        "shutil.move": second_path("shutil.move"),
        "shutil.rmtree": first_path("shutil.rmtree"),
        "shutil.make_archive": first_path("shutil.make_archive"),
        "shutil.unpack_archive": second_path("shutil.unpack_archive"),
    }

    def hook(event: str, args: tuple[object, ...]) -> None:
        if event in denied_events:
            raise denial(event)
        handler = handlers.get(event)
        if handler is not None:
            handler(args)

    return hook

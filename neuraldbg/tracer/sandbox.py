"""The child's sandbox (isolation level "audit"): resource limits, stubs and
an audit hook (PEP 578).

Standard library only: the sandboxed child loads this file directly, and
nothing here may run in the parent process (an audit hook cannot be removed).

What it stops: new processes (fork, exec, spawn, system, subprocess), network
use (and sockets other than unix and IP ones), writing/creating/removing/
renaming files outside the sandbox directory (``/dev/null`` may be written),
ctypes, Tcl and other modules that reach under the interpreter or act without
audit events, signals to other processes (``kill``, pidfds, ``F_SETOWN``),
ioctls, reading other processes' ``/proc`` files, memory files
(``/proc/self/mem``, ``/proc/kcore``, ``/dev/mem``) and terminals, environment
variables that make libraries load code (``GCONV_PATH``, ``OPENSSL_CONF``,
``LD_*``), raising the resource limits. Blocked operations raise
``PermissionError("neuraldbg sandbox: <event> is not allowed ...")`` (an
``ImportError`` for blocked imports) inside the traced program.

The hook is written for programs that try to get around it in Python:

- Nothing is looked up when an event comes. The hook is one function with no
  globals, builtins or closure: everything it uses (C functions of ``posix``,
  frozensets, strings, numbers) is bound as a default when it is built, and
  it resolves paths itself (join, ``..``, symlinks with a limit of 40) with
  ``posix.lstat``/``readlink``/``getcwd``. Monkeypatching ``os``, ``os.path``
  or this module changes nothing; a denial's traceback shows the hook's frame,
  whose locals are all immutable; the function itself is kept only by the
  interpreter's hook list.
- A path is what the C code used. CPython converts ``os.PathLike`` objects
  before it raises an event (``io.open`` and the ``os`` functions pass the
  converted str), so pathlib and ``os.DirEntry`` work. A str or bytes subclass
  is read through ``str.__str__``/``bytes.__bytes__`` (its data, not its
  methods). Anything else in an event (``_io.FileIO(path_like)``, a bytearray)
  was converted by C code the hook cannot see again: it is refused, telling the
  program to pass a str.
- The base of a relative path can differ from what the hook sees: the "open"
  event does not carry ``dir_fd``, and another thread can move a folder (or
  ``chdir``) between the check and the system call. So the rules hold whatever
  the base: (1) the working directory stays inside (``chdir`` only inside);
  (2) no directory outside may be opened, so every ``dir_fd`` names a folder
  inside; (3) a symlink may only be created pointing inside (an absolute
  target in the sandbox directory or a relative one, neither with ``..``), so
  following links inside never leads out, even if they are swapped; (4) a
  ``..`` applied to a folder inside the sandbox is refused (that folder can be
  moved under it; this holds for reads too, which are checked for
  directories outside and other processes' /proc files). Then a path that
  starts inside stays inside, and a path outside is resolved through folders
  the program cannot change. Writes through ``/proc`` links (descriptors,
  ``cwd``) are refused for the same reason.
  Metadata changes through a descriptor (``fchmod``, ``fchown``, ``futimes``,
  ``fsetxattr``) are refused: another thread could ``dup2`` an outside file
  onto it between the check and the call.
- Fresh copies of the modules whose functions are stubbed (``posix``,
  ``_signal``, ``time``, ``_posixsubprocess``) or of ``_imp`` are refused: their
  "import" event, and ``_imp.create_builtin``, which is replaced by a function
  that only hands out the built-in modules not imported yet (created here, so
  the original is dropped); ``_imp.create_dynamic`` raises an "import" event
  with the name and file that it loads, and the hook checks both (no denied
  module, no file from the sandbox directory or through ``/proc``).

What stays open on this level (audit hooks are a guard against programs
that do harm through the normal APIs, not a security boundary): native code
(a C extension, a third-party module with raw memory access such as numpy's
``__array_interface__``) and interpreter internals (crafted bytecode through
``marshal.loads`` or ``types.CodeType``, interpreter bugs) get past every
hook; ``_multiprocessing`` still creates and unlinks named semaphores in
/dev/shm (``multiprocessing.pool.ThreadPool`` needs it; stubbing it would cost
0.6 ms per start); an unbound socket may still ``listen()`` (the kernel picks a
port) and accept connections; ``os.stat`` and ``os.readlink`` raise no events
(another process's ``/proc/<pid>/cwd`` can be read as a link); a ``/proc``
mounted somewhere else is not recognised. Run untrusted code on a stronger
level (bubblewrap, Landlock).
"""

from __future__ import annotations

import os
import posix
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
        "fcntl.ioctl",  # TIOCSTI (type into a terminal), network interface and device ioctls
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
# do not inherit audit hooks) or act without audit events: Tcl's exec, open
# and socket; shared memory in /dev/shm; the system log, NIS lookups and the
# sound device; files written by dbm and readline.
_DENIED_IMPORTS = frozenset(
    {
        "ctypes",
        "_ctypes",
        "_ctypes_test",
        "_cffi_backend",
        "cffi",
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
        "_tkinter",
        "tkinter",
        "syslog",
        "nis",
        "ossaudiodev",
        "_dbm",
        "_gdbm",
        "readline",
    }
)

# Functions with no audit event that could harm the machine, by the C module
# that defines them; replaced by stubs that raise (no safe subset is worth
# keeping). ``fork_exec`` is what multiprocessing's spawn calls directly.
_UNAUDITED = (
    (
        "posix",
        ("mkfifo", "mknod", "pidfd_open", "chroot",
         "setpriority", "sched_setaffinity", "sched_setscheduler", "sched_setparam"),  # on other processes too
    ),
    ("_signal", ("pidfd_send_signal",)),
    ("time", ("clock_settime", "clock_settime_ns")),
    ("_posixsubprocess", ("fork_exec",)),
)
# Python modules that copied those functions at import: patched too when
# already imported (importing ``signal`` would cost the child's startup; a
# later import copies the stubs).
_REEXPORTERS = {"posix": "os", "_signal": "signal"}
# A second copy of these would bring the originals back.
_NO_FRESH_COPY = frozenset({"posix", "_signal", "time", "_posixsubprocess", "_imp"})

_SOCKET_FAMILIES = frozenset({-1, 1, 2, 10})  # from a descriptor, AF_UNIX, AF_INET, AF_INET6
_FCNTL_DENIED = frozenset({8, 10, 15, 1024})  # F_SETOWN, F_SETSIG, F_SETOWN_EX (SIGIO to any process), F_SETLEASE
_ENV_DENIED = frozenset({"GCONV_PATH", "LOCPATH", "OPENSSL_CONF", "OPENSSL_ENGINES", "OPENSSL_MODULES"})
_MEMORY_AND_TERMINALS = frozenset({"/proc/kcore", "/dev/mem", "/dev/kmem", "/dev/port", "/dev/console"})
_TERMINAL_PREFIXES = ("/dev/tty", "/dev/pts/", "/dev/vcs")
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
_SHUTIL_FIRST = frozenset({"shutil.rmtree", "shutil.make_archive"})
_SHUTIL_SECOND = frozenset({"shutil.copyfile", "shutil.copymode", "shutil.copystat", "shutil.copytree",
                            "shutil.move", "shutil.unpack_archive"})
_METADATA_DIR_FD = (("os.chmod", 2), ("os.chown", 3), ("os.utime", 3), ("os.setxattr", -1), ("os.removexattr", -1))
_WATCHED = frozenset(
    {"open", "import", "os.kill", "socket.__new__", "fcntl.fcntl", "os.putenv", "os.remove", "os.rmdir",
     "os.mkdir", "os.rename", "os.link", "os.symlink", "os.truncate", "os.chdir", "os.listdir", "os.scandir"}
    | {event for event, _ in _METADATA_DIR_FD} | _SHUTIL_FIRST | _SHUTIL_SECOND | _DENIED_EVENTS
)

# What one path check requires (bits of ``how`` in the hook).
_INSIDE = 1  # resolves into the sandbox directory (a write)
_ENTRY = 2  # the entry itself changes: the last component is not followed, and it is not the directory itself
_NOFOLLOW = 4  # the last component is not followed
_READ = 8  # not another process's /proc files, not a memory file or terminal
_DIRECTORY = 16  # not a directory outside (its descriptor would be a dir_fd outside)
_FD_OK = 32  # a descriptor passes (its access was checked when it was opened)
_NO_FD = 64  # a descriptor is refused
_NONE_OK = 128  # None is the working directory
_ADVISORY = 256  # shutil's events: what is not a str or bytes is skipped (the os calls under it are checked)
_ORIGIN = 512  # an extension module's file: not from the sandbox directory, not through /proc
_TARGET = 1024  # a symlink's target: inside, with no '..' (checked as text, not resolved)
_DEV_NULL = 2048  # /dev/null may be written


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
    _forget_denied_modules()
    _replace_create_builtin()
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
                real = getattr(module, attribute, None)
                if real is not None:
                    stub = _stub(f"{module.__name__}.{attribute}")
                    setattr(module, attribute, stub)
                    _replace_in_supports(real, stub)


def _replace_in_supports(real: object, stub: object) -> None:
    """``os.supports_dir_fd`` and friends hold the functions themselves."""
    for name in ("supports_dir_fd", "supports_fd", "supports_follow_symlinks", "supports_effective_ids"):
        functions = getattr(os, name, None)
        if isinstance(functions, set) and real in functions:
            functions.discard(real)
            functions.add(stub)


def _stub(name: str) -> Callable[..., object]:
    message = f"neuraldbg sandbox: {name} is not allowed"

    def denied(*args: object, **kwargs: object) -> object:
        raise PermissionError(message)

    denied.__name__ = name.rsplit(".", 1)[-1]
    return denied


def _forget_denied_modules() -> None:
    """Modules the child itself loaded that the program may not import (ctypes
    under Landlock): out of ``sys.modules``, so that importing them raises
    the "import" event."""
    for name in list(sys.modules):
        if name.partition(".")[0] in _DENIED_IMPORTS:
            del sys.modules[name]


def _replace_create_builtin() -> None:
    """Create the built-in modules not imported yet (about 0.25 ms for all 16
    of them) and replace ``_imp.create_builtin`` by a function that hands each
    out once to the import system: a second copy of ``posix`` or ``_imp``
    cannot be made, and the replacement holds nothing but those harmless
    modules (the original is dropped: no wrapper could hide it)."""
    imp = sys.modules["_imp"]
    real = imp.create_builtin
    spec_type = type(sys.implementation)  # types.SimpleNamespace without importing types
    pool: dict[str, object] = {}
    for name in sys.builtin_module_names:
        if name not in sys.modules:
            module = real(spec_type(name=name))
            if sys.modules.get(name) is module:  # single-phase: registered without a spec
                del sys.modules[name]
            pool[name] = module
    del real

    def create_builtin(spec: object) -> object:
        name = getattr(spec, "name", None)
        module = pool.pop(name, None) if isinstance(name, str) else None
        if module is None:
            raise ImportError(f"neuraldbg sandbox: a second copy of the built-in module {name} is not allowed",
                              name=name if isinstance(name, str) else None)
        return module

    imp.create_builtin = create_builtin


def _make_hook(root: str) -> Callable[[str, tuple[object, ...]], None]:
    """The audit hook for the sandbox directory ``root`` (a real path), not
    installed. It runs with no globals and no builtins: what it needs is bound
    as a default here, and nothing it calls raises audit events itself."""
    pid = posix.getpid()

    def hook(  # one self-contained function by design (see the module docstring)
        event: str, args: tuple[object, ...],
        watched: frozenset[str] = _WATCHED, denied_events: frozenset[str] = _DENIED_EVENTS,
        denied_imports: frozenset[str] = _DENIED_IMPORTS, no_fresh_copy: frozenset[str] = _NO_FRESH_COPY,
        socket_families: frozenset[int] = _SOCKET_FAMILIES, fcntl_denied: frozenset[int] = _FCNTL_DENIED,
        env_denied: frozenset[str] = _ENV_DENIED, memory_and_terminals: frozenset[str] = _MEMORY_AND_TERMINALS,
        terminal_prefixes: tuple[str, ...] = _TERMINAL_PREFIXES, shutil_first: frozenset[str] = _SHUTIL_FIRST,
        shutil_second: frozenset[str] = _SHUTIL_SECOND, metadata_dir_fd: tuple[tuple[str, int], ...] = _METADATA_DIR_FD,
        root: str = root, root_slash: str = root + "/", own_pid: int = pid, own_pid_text: str = str(pid),
        own_proc: str = f"/proc/{pid}", own_proc_slash: str = f"/proc/{pid}/", write_flags: int = _WRITE_FLAGS,
        fs_encoding: str = sys.getfilesystemencoding(),
        INSIDE: int = _INSIDE, ENTRY: int = _ENTRY, NOFOLLOW: int = _NOFOLLOW, READ: int = _READ,
        DIRECTORY: int = _DIRECTORY, FD_OK: int = _FD_OK, NO_FD: int = _NO_FD, NONE_OK: int = _NONE_OK,
        ADVISORY: int = _ADVISORY, ORIGIN: int = _ORIGIN, TARGET: int = _TARGET, DEV_NULL: int = _DEV_NULL,
        lstat: Callable[..., os.stat_result] = posix.lstat, stat: Callable[..., os.stat_result] = posix.stat,
        readlink: Callable[[str], str] = posix.readlink, getcwd: Callable[[], str] = posix.getcwd,
        tuple_item: Callable[..., int] = tuple.__getitem__, str_copy: Callable[[object], str] = str.__str__,
        bytes_copy: Callable[[object], bytes] = bytes.__bytes__,
        type_name: Callable[[type], str] = type.__dict__["__name__"].__get__,
        type_: type = type, str_: type = str, bytes_: type = bytes, int_: type = int, none: None = None,
        PermissionError_: type[PermissionError] = PermissionError, ImportError_: type[ImportError] = ImportError,
        OSError_: type[OSError] = OSError, ValueError_: type[ValueError] = ValueError,
        TypeError_: type[TypeError] = TypeError,
    ) -> None:
        # Only immutable values and C callables are bound in this frame (a denial's
        # traceback shows it), no name is looked up, and nothing the program
        # defined is called: types are compared with `is`, str and bytes
        # subclasses are read through str.__str__ and bytes.__bytes__.
        if event not in watched:
            return
        if event in denied_events:
            raise PermissionError_(f"neuraldbg sandbox: {event} is not allowed")
        what = event
        checks = ()
        if event == "open":
            flags = args[2]
            if type_(flags) is not int_:
                flags = write_flags
            writing = flags & write_flags
            if not writing and type_(args[1]) is str_:
                for letter in "wax+":
                    if letter in args[1]:
                        writing = 1
            if writing:
                what = "open for writing"
                checks = ((args[0], -1, INSIDE | FD_OK | DEV_NULL),)
            else:
                checks = ((args[0], -1, READ | DIRECTORY | FD_OK),)
        elif event == "import":
            name = args[0]
            if type_(name) is not str_:
                name = str_copy(name)  # C passes a str (or a subclass): its data
            top = name.partition(".")[0]
            last = name.rpartition(".")[2]  # an extension's PyInit_ name
            origin = args[1]
            if (top in denied_imports or name in no_fresh_copy
                    or (origin is not none and (last in denied_imports or last in no_fresh_copy))):
                raise ImportError_(f"neuraldbg sandbox: import of {name} is not allowed", name=name)
            if origin is none:
                return
            what = f"loading the extension module {name}"
            checks = ((origin, -1, ORIGIN),)
        elif event == "os.kill":
            if type_(args[0]) is not int_ or args[0] != own_pid:
                raise PermissionError_("neuraldbg sandbox: os.kill is not allowed for other processes")
            return
        elif event == "socket.__new__":
            family = args[1]
            if type_(family) is not int_ or family not in socket_families:
                shown = family if type_(family) is int_ else "?"
                raise PermissionError_(f"neuraldbg sandbox: sockets of address family {shown} are not allowed")
            return
        elif event == "fcntl.fcntl":
            command = args[1]
            if type_(command) is not int_ or command in fcntl_denied:
                shown = command if type_(command) is int_ else "?"
                raise PermissionError_(f"neuraldbg sandbox: fcntl.fcntl command {shown} is not allowed"
                                       " (it signals other processes or takes file leases)")
            return
        elif event == "os.putenv":
            key = args[0]
            if type_(key) is bytes_:
                key = key.decode(fs_encoding, "surrogateescape")
            if type_(key) is not str_:
                raise PermissionError_("neuraldbg sandbox: os.putenv needs a str or bytes name")
            if key in env_denied or key.startswith("LD_"):
                raise PermissionError_(f"neuraldbg sandbox: setting {key} is not allowed"
                                       " (it makes libraries load code)")
            return
        elif event == "os.remove" or event == "os.rmdir":
            checks = ((args[0], args[1], INSIDE | ENTRY),)
        elif event == "os.mkdir":
            checks = ((args[0], args[2], INSIDE | ENTRY),)
        elif event == "os.rename":
            checks = ((args[0], args[2], INSIDE | ENTRY), (args[1], args[3], INSIDE | ENTRY))
        elif event == "os.link":
            checks = ((args[0], args[2], INSIDE), (args[0], args[2], INSIDE | ENTRY),
                      (args[1], args[3], INSIDE | ENTRY))
        elif event == "os.symlink":
            checks = ((args[0], -1, TARGET), (args[1], args[2], INSIDE | ENTRY))
        elif event == "os.truncate":
            checks = ((args[0], -1, INSIDE | FD_OK),)  # ftruncate needs a descriptor open for writing
        elif event == "os.chdir":
            checks = ((args[0], -1, INSIDE),)
        elif event == "os.listdir" or event == "os.scandir":
            checks = ((args[0], -1, READ | FD_OK | NONE_OK),)
        elif event in shutil_first:
            checks = ((args[0], -1, INSIDE | ADVISORY),)
        elif event in shutil_second:
            checks = ((args[1], -1, INSIDE | ADVISORY),)
        else:
            for metadata_event, dir_fd_at in metadata_dir_fd:  # chmod, chown, utime, xattrs: the file and the link
                if event == metadata_event:
                    dir_fd = args[dir_fd_at] if dir_fd_at >= 0 else -1
                    checks = ((args[0], dir_fd, INSIDE | NO_FD), (args[0], dir_fd, INSIDE | NO_FD | NOFOLLOW))

        for path, dir_fd, how in checks:
            # -- the path as text ------------------------------------------------
            text = none
            kind = type_(path)
            if kind is str_:
                text = path
            elif kind is bytes_:
                text = path.decode(fs_encoding, "surrogateescape")
            elif kind is int_:
                if how & FD_OK:
                    continue
                if how & NO_FD:
                    raise PermissionError_(f"neuraldbg sandbox: {what} is not allowed through a file descriptor"
                                           " (another thread could swap it): pass the path")
                link = ""
                try:
                    link = readlink(f"{own_proc}/fd/{path}")
                except OSError_:
                    pass
                if link[:1] != "/":
                    raise PermissionError_(f"neuraldbg sandbox: {what} is not allowed on descriptor {path}"
                                           " (not a file in a folder)")
                text = link
            elif path is none and how & NONE_OK:
                continue
            else:
                try:
                    text = str_copy(path)
                except TypeError_:
                    pass
                if text is none:
                    try:
                        text = bytes_copy(path).decode(fs_encoding, "surrogateescape")
                    except TypeError_:
                        pass
                if text is none:
                    if how & ADVISORY:
                        continue
                    raise PermissionError_(f"neuraldbg sandbox: {what} needs a str or bytes path,"
                                           f" not {type_name(kind)}: pass str(path)")
            if how & TARGET:  # a symlink's text, resolved later from wherever the link is
                if "/../" in "/" + text + "/" or (text[:1] == "/" and text != root and not text.startswith(root_slash)):
                    raise PermissionError_("neuraldbg sandbox: os.symlink is not allowed to point outside the sandbox"
                                           f" directory (a target inside it, with no '..'): {text!r}")
                continue

            # -- the base of a relative path ----------------------------------------
            if text[:1] == "/":
                current = ""
            else:
                if type_(dir_fd) is not int_:
                    raise PermissionError_(f"neuraldbg sandbox: {what} is not allowed relative to an unknown folder")
                base = ""
                try:
                    base = getcwd() if dir_fd == -1 else readlink(f"{own_proc}/fd/{dir_fd}")
                except OSError_:
                    pass
                if base[:1] != "/":
                    raise PermissionError_(f"neuraldbg sandbox: {what} is not allowed: the folder of {text!r} is gone")
                current = "" if base == "/" else base

            # -- resolve: components, '..' and symlinks, as the kernel would now --------
            pending = text
            follow_last = not how & (ENTRY | NOFOLLOW)
            links = 0
            climbed = False  # a '..' from a folder in the sandbox
            through_proc = False  # followed a link under /proc (descriptors, cwd: they can change)
            other_process = False
            unresolved = False
            while pending:
                head, separator, pending = pending.partition("/")
                if head == "" or head == ".":
                    continue
                if head == "..":
                    if current == root or current.startswith(root_slash):
                        climbed = True
                    current = current[: current.rfind("/")]
                    continue
                if current == "/proc" and head != own_pid_text and head.isdigit():
                    other_process = True
                candidate = current + "/" + head
                if not separator and not follow_last:
                    current = candidate
                    break
                mode = 0
                try:
                    mode = tuple_item(lstat(candidate), 0)
                except OSError_:
                    pass  # missing: the rest is literal (inside stays inside by the rules above)
                except ValueError_:
                    unresolved = True
                    break
                if mode & 0o170000 != 0o120000:
                    current = candidate
                    continue
                links += 1
                target = ""
                try:
                    target = readlink(candidate)
                except OSError_:
                    pass
                if links > 40 or not target:
                    unresolved = True
                    break
                if candidate.startswith("/proc/"):
                    through_proc = True
                if target[:1] == "/":
                    current = ""
                pending = target + separator + pending
            resolved = current or "/"

            # -- the rules --------------------------------------------------------
            if unresolved:
                raise PermissionError_(f"neuraldbg sandbox: {what} is not allowed: cannot resolve {text!r}")
            if climbed:
                raise PermissionError_(f"neuraldbg sandbox: {what} is not allowed with '..' inside the sandbox"
                                       f" directory (its folders can move): {text!r}")
            if other_process:
                raise PermissionError_(f"neuraldbg sandbox: {what} is not allowed for another process's /proc files:"
                                       f" {text!r}")
            inside = resolved == root or resolved.startswith(root_slash)
            if how & INSIDE:
                if not inside and not (how & DEV_NULL and resolved == "/dev/null"):
                    raise PermissionError_(f"neuraldbg sandbox: {what} is not allowed outside the sandbox directory:"
                                           f" {text!r}")
                if through_proc:
                    raise PermissionError_(f"neuraldbg sandbox: {what} is not allowed through /proc: {text!r}")
                if how & ENTRY and resolved == root:
                    raise PermissionError_(f"neuraldbg sandbox: {what} is not allowed on the sandbox directory itself")
            if how & READ:
                if ((resolved.startswith(own_proc_slash) and resolved.endswith("/mem"))
                        or resolved in memory_and_terminals or resolved.startswith(terminal_prefixes)):
                    raise PermissionError_(f"neuraldbg sandbox: {what} is not allowed for {text!r}"
                                           " (memory or a terminal)")
                if how & DIRECTORY and not inside:
                    mode = 0
                    try:
                        mode = tuple_item(stat(resolved), 0)
                    except OSError_:
                        pass
                    if mode & 0o170000 == 0o040000:
                        raise PermissionError_("neuraldbg sandbox: opening a directory is not allowed outside the"
                                               f" sandbox directory: {text!r}")
            if how & ORIGIN and (inside or through_proc):
                raise PermissionError_(f"neuraldbg sandbox: {what} is not allowed from the sandbox directory or"
                                       f" through /proc: {text!r}")

    # A copy with empty globals and builtins: a name looked up by mistake fails
    # loudly instead of reading something the program can rebind.
    return type(hook)(hook.__code__, {"__builtins__": {}}, "neuraldbg_sandbox_hook", hook.__defaults__)

"""The audit-hook sandbox (isolation level "audit") against programs written to
get around it in pure Python: no C extension and no interpreter bug, only
monkeypatching, lying path objects, races on the base of relative paths,
tampering with the hook's own frame, fresh copies of stubbed modules, native
stdlib modules that raise no audit events, and other processes' /proc files.

Every program tries to act outside its sandbox directory (write a file in this
test's tmp_path, signal a victim process, read its environment) and the test
checks on the file system, or on the victim, that it did not, and that the
program saw a one-line refusal from the sandbox.
"""

from __future__ import annotations

import ast
import dis
import os
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from neuraldbg.trace import Trace
from neuraldbg.tracer import Limits, run_trace

LIMITS = Limits(wall_seconds=20, cpu_seconds=5, max_repr=4000)
REFUSAL = "neuraldbg sandbox: "
SECRET = "neuraldbg-test-secret-0d9f3c"


def hostile(body: str, tmp_path: Path, **constants: object) -> Trace:
    """Run ``body`` as the function ``f`` on the audit-hook level, with each
    constant (``TARGET=...``) defined at module level."""
    header = "import os, sys\n" + "".join(f"{name} = {value!r}\n" for name, value in constants.items())
    source = header + "def f():\n" + "".join(f"    {line}\n" for line in body.splitlines())
    return run_trace(source, "f()", function="f", path=str(tmp_path / "hostile.py"), limits=LIMITS,
                     isolation="audit")


def assert_refused(trace: Trace, message: str = REFUSAL) -> None:
    """The program ran, and the sandbox's refusal ended it (uncaught)."""
    assert trace.status == "complete", trace.error
    assert trace.error is not None and message in trace.error, (trace.error, trace.stdout)
    assert "\n" not in trace.error


def assert_returned(trace: Trace, value: str) -> None:
    assert trace.status == "complete", trace.error
    assert trace.error is None, (trace.error, trace.stdout)
    assert trace.return_value == value


@pytest.fixture
def victim() -> Iterator[subprocess.Popen[bytes]]:
    """A process that is not the child's: its environment holds a secret."""
    process = subprocess.Popen(["sleep", "60"], env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                                                     "NEURALDBG_TEST_SECRET": SECRET})
    yield process
    process.kill()
    process.wait()


# -- 1. the hook looks nothing up at event time --------------------------------

MONKEYPATCHES = {
    "os.path.realpath": (
        "sandbox = os.getcwd()\n"
        "os.path.realpath = lambda path, *args, **kwargs: sandbox + '/inside.txt'\n"
        "open(TARGET, 'w').write('escaped')"
    ),
    "os.lstat, under realpath": (
        "os.symlink(os.path.dirname(TARGET), 'door')\n"
        "real_lstat = os.lstat\n"
        "def lstat(path, *args, **kwargs):\n"
        "    if os.fspath(path).endswith('/door'):\n"
        "        raise FileNotFoundError(path)\n"
        "    return real_lstat(path, *args, **kwargs)\n"
        "os.lstat = lstat\n"
        "open('door/' + os.path.basename(TARGET), 'w').write('escaped')"
    ),
    "os.getcwd": (
        "sandbox = os.getcwd()\n"
        "os.chdir(os.path.dirname(TARGET))\n"
        "os.getcwd = lambda: sandbox\n"
        "open(os.path.basename(TARGET), 'w').write('escaped')"
    ),
    "os.fspath": (
        "sandbox = os.getcwd()\n"
        "os.fspath = lambda path: sandbox + '/inside.txt'\n"
        "open(TARGET, 'w').write('escaped')"
    ),
    "the sandbox module's globals": (
        "sandbox = sys.modules['_neuraldbg_tracer_sandbox']\n"
        "sandbox._WRITE_FLAGS = 0\n"
        "sandbox.denial = lambda *args: None\n"
        "os.close(os.open(TARGET, os.O_WRONLY | os.O_CREAT))"
    ),
}


@pytest.mark.parametrize("patched", list(MONKEYPATCHES))
def test_monkeypatching_what_the_hook_used_to_call_changes_nothing(patched: str, tmp_path: Path) -> None:
    target = tmp_path / "escaped.txt"
    trace = hostile(MONKEYPATCHES[patched], tmp_path, TARGET=str(target))
    assert not target.exists()
    assert_refused(trace)


# -- 2. paths are what the C code used -------------------------------------------

LYING_PATHS = {
    "a str subclass with its own methods": (
        "inside = os.getcwd()[1:] + '/inside.txt'\n"
        "class Sly(str):\n"
        "    def startswith(self, *args): return True\n"
        "    def __eq__(self, other): return True\n"
        "    __hash__ = str.__hash__\n"
        "    def __getitem__(self, key): return inside if isinstance(key, slice) else str.__getitem__(self, key)\n"
        "open(Sly(TARGET), 'w').write('escaped')",
        "open for writing is not allowed outside the sandbox directory",
    ),
    "a PathLike that answers differently the second time": (
        "import _io\n"
        "inside = os.getcwd() + '/inside.txt'\n"
        "class Sly:\n"
        "    calls = 0\n"
        "    def __fspath__(self):\n"
        "        Sly.calls += 1\n"
        "        return TARGET if Sly.calls == 1 else inside\n"
        "_io.FileIO(Sly(), 'w').write(b'escaped')",
        "open for writing needs a str or bytes path, not Sly: pass str(path)",
    ),
    "a bytearray": (
        "os.mkdir(bytearray(os.fsencode(TARGET)))",
        "os.mkdir needs a str or bytes path, not bytearray: pass str(path)",
    ),
}


@pytest.mark.parametrize("kind", list(LYING_PATHS))
def test_path_objects_cannot_show_the_hook_another_path(kind: str, tmp_path: Path) -> None:
    body, message = LYING_PATHS[kind]
    target = tmp_path / "escaped.txt"
    trace = hostile(body, tmp_path, TARGET=str(target))
    assert not target.exists()
    assert_refused(trace, REFUSAL + message)


def test_a_lying_path_object_cannot_read_another_process(tmp_path: Path, victim: subprocess.Popen[bytes]) -> None:
    body = (
        "import _io\n"
        "class Sly:\n"
        "    calls = 0\n"
        "    def __fspath__(self):\n"
        "        Sly.calls += 1\n"
        "        return f'/proc/{VICTIM}/environ' if Sly.calls == 1 else '/etc/hostname'\n"
        "return _io.FileIO(Sly(), 'r').read()"
    )
    trace = hostile(body, tmp_path, VICTIM=victim.pid)
    assert SECRET not in (trace.return_value or "")
    assert_refused(trace, REFUSAL + "open needs a str or bytes path, not Sly: pass str(path)")


def test_path_objects_of_the_standard_library_still_work(tmp_path: Path) -> None:
    body = (
        "import pathlib\n"
        "here = pathlib.Path('notes')\n"
        "here.mkdir()\n"
        "(here / 'a.txt').write_text('kept')\n"
        "(here / 'a.txt').rename(here / 'b.txt')\n"
        "(here / 'c.txt').touch()\n"
        "(here / 'c.txt').unlink()\n"
        "entries = [entry for entry in os.scandir(here)]\n"
        "with open(entries[0], 'rb') as fh:\n"
        "    data = fh.read()\n"
        "return (here / 'b.txt').read_text(), [p.name for p in here.iterdir()], data, os.path.isfile(b'notes/b.txt')"
    )
    assert_returned(hostile(body, tmp_path), "('kept', ['b.txt'], b'kept', True)")


# -- 3. relative paths, dir_fd, chdir and symlinks --------------------------------


def test_dir_fd_cannot_climb_out_from_a_base_the_hook_does_not_see(tmp_path: Path) -> None:
    # The "open" event does not carry dir_fd: the hook resolves the path from
    # the working directory, three folders deeper than the directory the
    # descriptor names, so '..' lands inside for the hook and outside for the
    # kernel.
    body = (
        "sandbox = os.getcwd()\n"
        "base = os.open('.', os.O_RDONLY)\n"
        "relative = os.path.relpath(TARGET, sandbox)\n"
        "deep = '/'.join(['d'] * (relative.split('/').count('..') + 1))\n"
        "os.makedirs(deep)\n"
        "os.chdir(deep)\n"
        "os.close(os.open(relative, os.O_WRONLY | os.O_CREAT, dir_fd=base))"
    )
    target = tmp_path / "escaped.txt"
    trace = hostile(body, tmp_path, TARGET=str(target))
    assert not target.exists()
    assert_refused(trace, REFUSAL + "open for writing is not allowed with '..' inside the sandbox directory")


def test_chdir_outside_the_sandbox_is_refused(tmp_path: Path) -> None:
    body = "os.chdir(os.path.dirname(TARGET))\nopen(os.path.basename(TARGET), 'w').write('escaped')"
    target = tmp_path / "escaped.txt"
    trace = hostile(body, tmp_path, TARGET=str(target))
    assert not target.exists()
    assert_refused(trace, REFUSAL + "os.chdir is not allowed outside the sandbox directory")


@pytest.mark.parametrize("link_target", ["{outside}", "../{name}", "sub/../../{name}"])
def test_symlinks_may_not_point_outside(link_target: str, tmp_path: Path) -> None:
    # A link that points outside could be swapped in between the hook's check
    # and the kernel's use of a path (a second thread): none may exist.
    body = (
        "os.mkdir('sub')\n"
        f"os.symlink({link_target!r}.format(outside=os.path.dirname(TARGET), name=os.path.basename(TARGET)), 'door')\n"
        "open('door', 'w').write('escaped')"
    )
    target = tmp_path / "escaped.txt"
    trace = hostile(body, tmp_path, TARGET=str(target))
    assert not target.exists()
    assert_refused(trace, REFUSAL + "os.symlink is not allowed to point outside the sandbox directory")


def test_metadata_changes_through_a_descriptor_are_refused(tmp_path: Path) -> None:
    # The descriptor could be swapped (dup2 from another thread) for one of a
    # file outside between the check and fchmod: only paths are accepted.
    victim = tmp_path / "keep.txt"
    victim.write_text("precious")
    victim.chmod(0o600)
    body = "os.fchmod(os.open(VICTIM, os.O_RDONLY), 0o777)"
    trace = hostile(body, tmp_path, VICTIM=str(victim))
    assert victim.stat().st_mode & 0o777 == 0o600
    assert_refused(trace, REFUSAL + "os.chmod is not allowed through a file descriptor")


def test_relative_paths_symlinks_and_dir_fd_inside_still_work(tmp_path: Path) -> None:
    body = (
        "os.makedirs('a/b')\n"
        "os.symlink('a/b', 'short')\n"
        "os.symlink(os.getcwd() + '/a', 'absolute')\n"
        "open('short/one.txt', 'w').write('1')\n"
        "base = os.open('a', os.O_RDONLY)\n"
        "os.close(os.open('b/two.txt', os.O_WRONLY | os.O_CREAT, dir_fd=base))\n"
        "os.chdir('absolute/b')\n"
        "os.chdir(os.path.dirname(os.path.dirname(os.getcwd())))\n"
        "import tempfile, shutil\n"
        "with tempfile.TemporaryDirectory() as scratch:\n"
        "    open(os.path.join(scratch, 'x'), 'w').write('x')\n"
        "shutil.rmtree('a')\n"
        "return sorted(os.listdir('.')), open('/etc/hostname').read() == open('/etc/hostname').read()"
    )
    assert_returned(hostile(body, tmp_path), "(['absolute', 'short'], True)")


# -- 4. the hook's frame holds nothing to tamper with ------------------------------

MUTABLE = (dict, list, set, types.FunctionType, types.ModuleType, types.CellType, types.MethodType)


def test_a_denials_traceback_gives_nothing_that_switches_the_checks_off(tmp_path: Path) -> None:
    # Every frame of the sandbox's on the denial's traceback: clear what is
    # mutable in its locals and globals (but the interpreter's builtins),
    # empty the closure cells of its functions, then try again.
    body = (
        "import types\n"
        "seen = set()\n"
        "try:\n"
        "    open(TARGET, 'w')\n"
        "except PermissionError as exc:\n"
        "    tb = exc.__traceback__\n"
        "    while tb is not None:\n"
        "        frame, tb = tb.tb_frame, tb.tb_next\n"
        "        if frame.f_code.co_filename == __file__:\n"
        "            continue\n"
        "        seen |= {type(value).__name__ for value in frame.f_locals.values()}\n"
        "        found = list(frame.f_locals.values())\n"
        "        found += [value for name, value in frame.f_globals.items() if name != '__builtins__']\n"
        "        for value in found:\n"
        "            if isinstance(value, (dict, list, set)):\n"
        "                value.clear()\n"
        "            elif isinstance(value, types.FunctionType):\n"
        "                for cell in value.__closure__ or ():\n"
        "                    cell.cell_contents = None\n"
        "try:\n"
        "    open(TARGET, 'w').write('escaped')\n"
        "except PermissionError as exc:\n"
        "    return sorted(seen), str(exc)\n"
        "return sorted(seen), 'written'"
    )
    target = tmp_path / "escaped.txt"
    trace = hostile(body, tmp_path, TARGET=str(target))
    assert not target.exists()
    assert trace.status == "complete" and trace.error is None, trace.error
    assert trace.return_value is not None
    seen, outcome = ast.literal_eval(trace.return_value)
    assert outcome.startswith(REFUSAL + "open for writing is not allowed outside the sandbox directory")
    assert not set(seen) & {kind.__name__ for kind in MUTABLE}, seen


def test_the_hook_is_one_function_of_immutable_captures(tmp_path: Path) -> None:
    """Built (not installed) in this process: no global or closure lookups,
    no nested functions, and only immutable values or C callables bound."""
    from neuraldbg.tracer import sandbox

    hook = sandbox._make_hook(str(tmp_path))
    code = hook.__code__
    assert hook.__closure__ is None and code.co_freevars == () and code.co_cellvars == ()
    assert hook.__kwdefaults__ is None
    looked_up = {i.opname for i in dis.get_instructions(code)} & {
        "LOAD_GLOBAL", "LOAD_NAME", "STORE_GLOBAL", "DELETE_GLOBAL", "LOAD_DEREF", "MAKE_FUNCTION", "IMPORT_NAME"}
    assert not looked_up
    assert not any(isinstance(const, types.CodeType) for const in code.co_consts)
    assert hook.__globals__ == {"__builtins__": {}}
    for value in hook.__defaults__ or ():
        assert _immutable(value), value


def _immutable(value: object) -> bool:
    if isinstance(value, (tuple, frozenset)):
        return all(_immutable(item) for item in value)
    return isinstance(value, (str, bytes, int, type(None), type, types.BuiltinFunctionType,
                              types.WrapperDescriptorType, types.MethodWrapperType, types.MethodDescriptorType))


# -- 5. no fresh copies of the stubbed modules --------------------------------------

FRESH_POSIX = {
    "del sys.modules, import": "del sys.modules['posix']\nimport posix\nposix.mkfifo(TARGET)",
    "module_from_spec": (
        "import importlib.util\n"
        "importlib.util.module_from_spec(importlib.util.find_spec('posix')).mkfifo(TARGET)"
    ),
    "_imp.create_builtin": (
        "import _imp, importlib.util\n"
        "_imp.create_builtin(importlib.util.find_spec('posix')).mkfifo(TARGET)"
    ),
    "os.supports_dir_fd": "[f for f in os.supports_dir_fd if f.__name__ == 'mkfifo'][0](TARGET)",
    "a fresh _imp": (
        "import importlib.util\n"
        "fresh = importlib.util.module_from_spec(importlib.util.find_spec('_imp'))\n"
        "fresh.create_builtin(importlib.util.find_spec('posix')).mkfifo(TARGET)"
    ),
}


@pytest.mark.parametrize("route", list(FRESH_POSIX))
def test_no_fresh_posix_module_brings_back_mkfifo(route: str, tmp_path: Path) -> None:
    target = tmp_path / "fifo"
    trace = hostile(FRESH_POSIX[route], tmp_path, TARGET=str(target))
    assert not os.path.lexists(target)
    assert_refused(trace)


def test_no_fresh_posixsubprocess_brings_back_fork_exec(tmp_path: Path) -> None:
    body = (
        "import _imp, importlib.util\n"
        "fresh = _imp.create_dynamic(importlib.util.find_spec('_posixsubprocess'))\n"
        "r, w = os.pipe()\n"
        "pid = fresh.fork_exec([b'/bin/sh', b'-c', b'echo escaped > ' + TARGET.encode()], [b'/bin/sh'], True, (),\n"
        "                      None, None, -1, -1, -1, -1, -1, -1, r, w, False, False, -1, None, None, None, -1,\n"
        "                      None, False)\n"
        "os.waitpid(pid, 0)"
    )
    target = tmp_path / "escaped.txt"
    trace = hostile(body, tmp_path, TARGET=str(target))
    assert not target.exists()
    assert_refused(trace, REFUSAL + "import of _posixsubprocess is not allowed")


def test_no_fresh_signal_module_signals_another_process(tmp_path: Path, victim: subprocess.Popen[bytes]) -> None:
    body = (
        "import importlib.util\n"
        "fresh_posix = importlib.util.module_from_spec(importlib.util.find_spec('posix'))\n"
        "fresh_signal = importlib.util.module_from_spec(importlib.util.find_spec('_signal'))\n"
        "fresh_signal.pidfd_send_signal(fresh_posix.pidfd_open(VICTIM), 9)"
    )
    trace = hostile(body, tmp_path, VICTIM=victim.pid)
    assert victim.poll() is None
    assert_refused(trace)


def test_built_in_modules_still_import(tmp_path: Path) -> None:
    body = (
        "import gc, faulthandler, pwd, errno, atexit, itertools, _tracemalloc, locale, re, collections, time, signal\n"
        "import subprocess, importlib\n"
        "from multiprocessing.pool import ThreadPool\n"
        "importlib.reload(gc)\n"
        "with ThreadPool(2) as pool:\n"
        "    squares = pool.map(lambda x: x * x, [1, 2, 3])\n"
        "return re.sub('a', 'b', 'aa'), collections.Counter('ab')['a'], errno.ENOENT, callable(subprocess.run), squares"
    )
    assert_returned(hostile(body, tmp_path), "('bb', 1, 2, True, [1, 4, 9])")


# -- 6. native modules that act without audit events ---------------------------------


def test_tcl_cannot_open_files_or_run_commands(tmp_path: Path) -> None:
    body = (
        "import tkinter\n"
        "tkinter.Tcl().eval('set f [open {%s} w]; puts $f escaped; close $f' % TARGET)"
    )
    target = tmp_path / "escaped.txt"
    trace = hostile(body, tmp_path, TARGET=str(target))
    assert not target.exists()
    assert_refused(trace, REFUSAL + "import of tkinter is not allowed")
    assert trace.error is not None and trace.error.startswith("ImportError")


NATIVE = {
    "_tkinter": ("import _tkinter", "import of _tkinter is not allowed"),
    "syslog": ("import syslog", "import of syslog is not allowed"),
    "fcntl.ioctl (TIOCSTI, interface ioctls)": (
        "import fcntl\nfcntl.ioctl(0, 0x5412, b'x')", "fcntl.ioctl is not allowed"),
    "fcntl F_SETOWN (SIGIO to another process)": (
        "import fcntl\nr, w = os.pipe()\nfcntl.fcntl(r, fcntl.F_SETOWN, os.getppid())",
        "fcntl.fcntl command 8 is not allowed"),
    "netlink socket (send() needs no connect)": (
        "import socket\nsocket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)",
        "sockets of address family 16 are not allowed"),
    "an extension module the program wrote": (
        "import importlib.util, glob, shutil\n"
        "shutil.copy(glob.glob(os.path.dirname(os.__file__) + '/lib-dynload/_json.*')[0], 'mine.so')\n"
        "importlib.util.module_from_spec(importlib.util.spec_from_file_location('_json', 'mine.so'))",
        "loading the extension module _json is not allowed from the sandbox directory"),
    "LD_PRELOAD": ("os.environ['LD_PRELOAD'] = 'mine.so'", "setting LD_PRELOAD is not allowed"),
    "GCONV_PATH (glibc loads converters from it)": (
        "os.environ['GCONV_PATH'] = os.getcwd()", "setting GCONV_PATH is not allowed"),
}


@pytest.mark.parametrize("kind", list(NATIVE))
def test_native_escape_hatches_are_refused(kind: str, tmp_path: Path) -> None:
    body, message = NATIVE[kind]
    assert_refused(hostile(body, tmp_path), REFUSAL + message)


# -- 7. other processes' /proc files and the child's own memory ------------------------

OTHER_PROCESS = {
    "environ": "return open(f'/proc/{VICTIM}/environ', 'rb').read()",
    "environ through /proc/self/..": "return open(f'/proc/self/../{VICTIM}/environ', 'rb').read()",
    "cmdline via a descriptor of the folder": (
        "folder = os.open(f'/proc/{VICTIM}', os.O_RDONLY)\n"
        "return os.read(os.open('cmdline', os.O_RDONLY, dir_fd=folder), 999)"
    ),
    "open descriptors": "return os.listdir(f'/proc/{VICTIM}/fd')",
    "its root": "return open(f'/proc/{VICTIM}/root/etc/hostname').read()",
}


@pytest.mark.parametrize("kind", list(OTHER_PROCESS))
def test_other_processes_proc_files_are_refused(kind: str, tmp_path: Path, victim: subprocess.Popen[bytes]) -> None:
    trace = hostile(OTHER_PROCESS[kind], tmp_path, VICTIM=victim.pid)
    assert SECRET not in (trace.return_value or "")
    assert_refused(trace, "is not allowed for another process's /proc files")


@pytest.mark.parametrize("path", ["/proc/self/mem", "/proc/{pid}/mem", "/proc/thread-self/mem", "/proc/kcore"])
def test_memory_files_are_refused(path: str, tmp_path: Path) -> None:
    trace = hostile(f"return open({path!r}.format(pid=os.getpid()), 'rb')", tmp_path)
    assert_refused(trace, REFUSAL + "open is not allowed")


def test_the_childs_own_proc_files_stay_readable(tmp_path: Path) -> None:
    body = (
        "status = open('/proc/self/status').read()\n"
        "return status.startswith('Name:'), f'{os.getpid()}' in open(f'/proc/{os.getpid()}/stat').read(),"
        " len(os.listdir('/proc/self/fd')) > 2"
    )
    assert_returned(hostile(body, tmp_path), "(True, True, True)")

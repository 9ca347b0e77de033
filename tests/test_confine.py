"""The tracer child's self-confinement (neuraldbg/tracer/confine.py).

Each case runs a real interpreter that loads confine.py by path, confines
itself with one layer set, then tries one thing. The layer sets are both
layers (what the child uses), each layer alone (so that a rule one layer
lost is not hidden by the other) and none (a control: every attack reaches
its victim, so that every refusal checked here can fail).
"""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from neuraldbg.tracer import confine

CONFINE = Path(confine.__file__)
KERNEL_ABI = confine._Native().landlock_abi()  # this machine's; the project's CI kernel has Landlock
ABI = min(KERNEL_ABI, 7)
SECRET = "sk-neuraldbg-confine-secret"
TIMEOUT = 60

# Runs in the confined interpreter: apply(), then each attempt in order.
HARNESS = r"""
import json, os, sys
spec = json.loads(sys.stdin.read())
sys.path.insert(0, spec["tracer_dir"])
import confine
del sys.path[0]
exec(spec["setup"], {"confine": confine})
outcome = {"results": {}}
try:
    outcome["description"] = confine.apply(spec["root"], **spec["kwargs"])
except BaseException as exc:
    kind = "OSError" if isinstance(exc, OSError) else type(exc).__name__  # FileNotFoundError and the like
    outcome["apply_error"] = [kind, getattr(exc, "errno", None), getattr(exc, "strerror", None) or str(exc)]
for name, code in spec["attempts"].items():
    scope = {"ctx": spec["ctx"], "os": os, "sys": sys}
    try:
        exec(code, scope)
        outcome["results"][name] = {"ok": repr(scope.get("result"))}
    except BaseException as exc:
        outcome["results"][name] = {"error": type(exc).__name__, "errno": getattr(exc, "errno", None),
                                    "message": str(exc)}
print(json.dumps(outcome))
"""

CTYPES_CALL = """
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
def check(value):
    if value < 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return value
"""


def exit_zero_program() -> str:
    """A program that exits 0, as latin-1 text: a static ELF on x86_64 (no
    interpreter whose own execute check would hide a rule that allows
    executing inside the sandbox), else a copy of /bin/true."""
    if os.uname().machine != "x86_64":
        return Path("/bin/true").read_bytes().decode("latin-1")
    import struct

    code = bytes([0xB8, 60, 0, 0, 0, 0x31, 0xFF, 0x0F, 0x05])  # mov eax, 60 (exit); xor edi, edi; syscall
    base, size = 0x400000, 64 + 56 + len(code)
    header = struct.pack("<16sHHIQQQIHHHHHH", b"\x7fELF\x02\x01\x01", 2, 0x3E, 1, base + 120, 64, 0, 0, 64, 56, 1,
                         0, 0, 0)
    segment = struct.pack("<IIQQQQQQ", 1, 5, 0, base, base, size, size, 0x1000)
    return (header + segment + code).decode("latin-1")


I386_GETPID = """
import ctypes, mmap
# mov eax, 20 (getpid in the i386 table); int 0x80; ret
code = bytes([0xB8, 20, 0, 0, 0, 0xCD, 0x80, 0xC3])
memory = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
memory.write(code)
value = ctypes.CFUNCTYPE(ctypes.c_int)(ctypes.addressof(ctypes.c_char.from_buffer(memory)))()
if value < 0:
    raise OSError(-value, os.strerror(-value))
assert value == os.getpid(), value
"""


@dataclass
class Attempt:
    code: str
    expect: dict[str, str]  # layer set -> "ok" or the errno name (or exception type) it fails with


LAYER_SETS: dict[str, dict[str, object]] = {
    "both": {},
    "landlock": {"layers": ["landlock"]},
    "seccomp": {"layers": ["seccomp"]},
    "none": {"layers": []},
    "abi2-landlock": {"layers": ["landlock"], "abi": 2},
    "abi2-both": {"abi": 2},
}


def _expect(both: str, landlock: str, seccomp: str, none: str | None = None) -> dict[str, str]:
    found = {"both": both, "landlock": landlock, "seccomp": seccomp}
    if none is not None:
        found["none"] = none
    return found


def _since(abi: int, refused: str) -> str:
    return refused if ABI >= abi else "ok"


WORKS = _expect("ok", "ok", "ok", "ok")  # confined or not
LANDLOCK_REFUSES = _expect("EACCES", "EACCES", "ok", "ok")

# In order: reads of the bystander before anything could kill it, exec last.
ATTEMPTS: dict[str, Attempt] = {
    "ctypes-left-unimported": Attempt('assert "ctypes" not in sys.modules', WORKS),
    "write-inside": Attempt(
        "p = os.path.join(ctx['root'], 'inside.txt')\nopen(p, 'w').write('x')\nassert open(p).read() == 'x'",
        WORKS),
    "rename-inside-across-folders": Attempt(
        "os.mkdir(os.path.join(ctx['root'], 'd'))\nopen(os.path.join(ctx['root'], 'a'), 'w').close()\n"
        "os.rename(os.path.join(ctx['root'], 'a'), os.path.join(ctx['root'], 'd', 'a'))",
        WORKS),
    "write-outside": Attempt("open(ctx['escaped'], 'w').write('x')", LANDLOCK_REFUSES),
    "create-folder-outside": Attempt("os.mkdir(ctx['escaped_dir'])", LANDLOCK_REFUSES),
    "truncate-outside": Attempt("os.truncate(ctx['victim'], 0)",
                                {**_expect("EACCES", _since(3, "EACCES"), "ok", "ok"), "abi2-landlock": "ok",
                                 "abi2-both": "EPERM"}),
    "open-read-only-truncating-outside": Attempt(
        "os.close(os.open(ctx['victim2'], os.O_RDONLY | os.O_TRUNC))",
        {**_expect("EACCES", _since(3, "EACCES"), "ok", "ok"), "abi2-landlock": "ok", "abi2-both": "EPERM"}),
    "write-dev-null": Attempt("open('/dev/null', 'w').write('x')", WORKS),
    "read-dev-urandom": Attempt("assert len(open('/dev/urandom', 'rb').read(4)) == 4", WORKS),
    "open-a-terminal-device": Attempt("open('/dev/ptmx', 'rb')", LANDLOCK_REFUSES),
    "read-own-proc": Attempt("assert 'VmRSS' in open('/proc/self/status').read()\n"
                             "assert open('/proc/thread-self/comm').read()", WORKS),
    "read-kernel-proc-files": Attempt("assert 'processor' in open('/proc/cpuinfo').read()\nos.getloadavg()\n"
                                      "assert int(open('/proc/sys/kernel/pid_max').read()) > 0",
                                      WORKS),
    "read-proc-kallsyms": Attempt("open('/proc/kallsyms').read(1)", LANDLOCK_REFUSES),
    "pins-hold-the-proc-rules": Attempt(
        "links = set()\nfor fd in os.listdir('/proc/self/fd'):\n    try:\n"
        "        links.add(os.readlink(f'/proc/self/fd/{fd}'))\n    except FileNotFoundError:  # listdir's own\n"
        "        pass\n"
        "assert f'/proc/{os.getpid()}' in links and '/proc/cpuinfo' in links, links",
        _expect("ok", "ok", "AssertionError", "AssertionError")),
    "list-folders": Attempt("assert 'proc' in os.listdir('/')\nassert os.listdir('/proc')\n"
                            "assert os.listdir(ctx['root']) is not None", WORKS),
    "read-bystander-cmdline": Attempt("assert 'sleep' in open(f\"/proc/{ctx['bystander']}/cmdline\").read()",
                                      LANDLOCK_REFUSES),
    "read-bystander-environ": Attempt(
        "assert ctx['secret'] in open(f\"/proc/{ctx['bystander']}/environ\").read()",
        LANDLOCK_REFUSES),
    "imports": Attempt("import json, decimal, asyncio, sqlite3, email.mime.text, xml.etree.ElementTree, zipfile\n"
                       "import tree_sitter, tree_sitter_python", WORKS),
    "thread": Attempt("import threading\nseen = []\nt = threading.Thread(target=seen.append, args=(1,))\n"
                      "t.start(); t.join()\nassert seen == [1]", WORKS),
    "thread-pool": Attempt("from concurrent.futures import ThreadPoolExecutor\n"
                           "assert list(ThreadPoolExecutor(4).map(abs, range(-8, 0))) == list(range(8, 0, -1))",
                           WORKS),
    "asyncio-run": Attempt("import asyncio\nasyncio.run(asyncio.sleep(0.01))", WORKS),
    "sqlite-file-inside": Attempt(
        "import sqlite3\nc = sqlite3.connect(os.path.join(ctx['root'], 'x.db'))\nc.execute('create table t(x)')\n"
        "c.commit()", WORKS),
    "timer-signal": Attempt(
        "import signal, time\nfired = []\nsignal.signal(signal.SIGALRM, lambda *a: fired.append(1))\n"
        "signal.setitimer(signal.ITIMER_REAL, 0.01)\nend = time.monotonic() + 5\n"
        "while not fired and time.monotonic() < end:\n    time.sleep(0.01)\nassert fired",
        WORKS),
    "signal-self": Attempt(
        "import signal, threading\ngot = []\nsignal.signal(signal.SIGUSR1, lambda *a: got.append(1))\n"
        "os.kill(os.getpid(), signal.SIGUSR1)\nsignal.raise_signal(signal.SIGUSR1)\n"
        "signal.pthread_kill(threading.main_thread().ident, signal.SIGUSR1)\nassert got == [1, 1, 1]",
        WORKS),
    "resource-limits-read": Attempt("import resource\nresource.getrlimit(resource.RLIMIT_AS)",
                                    WORKS),
    # Python reports setrlimit's EPERM as ValueError("not allowed to raise maximum limit").
    "resource-limits-set": Attempt("import resource\nresource.setrlimit(resource.RLIMIT_CORE, "
                                   "resource.getrlimit(resource.RLIMIT_CORE))",
                                   _expect("ValueError", "ok", "ValueError", "ok")),
    # As root, a device node in the sandbox would open the disk it names.
    "mknod-char-inside": Attempt("os.mknod(os.path.join(ctx['root'], 'null'), 0o20600, os.makedev(1, 3))",
                                 _expect("EPERM", "EACCES" if os.geteuid() == 0 else "EPERM", "EPERM",
                                         "ok" if os.geteuid() == 0 else "EPERM")),
    "mkfifo-inside": Attempt("os.mkfifo(os.path.join(ctx['root'], 'fifo'))", WORKS),
    "chmod-inside": Attempt("os.chmod(os.path.join(ctx['root'], 'inside.txt'), 0o600)",
                            _expect("EPERM", "ok", "EPERM", "ok")),
    "chmod-outside": Attempt("os.chmod(ctx['victim'], 0o666)", _expect("EPERM", "ok", "EPERM", "ok")),
    "socketpair": Attempt("import socket\na, b = socket.socketpair()\na.send(b'x')\nassert b.recv(1) == b'x'",
                          WORKS),
    "socket-inet": Attempt("import socket\nsocket.socket(socket.AF_INET, socket.SOCK_DGRAM).close()",
                           _expect("EPERM", "ok", "EPERM", "ok")),
    "tcp-connect": Attempt("import socket\nsocket.create_connection(('127.0.0.1', ctx['tcp_port']), timeout=5)",
                           _expect("EPERM", _since(4, "EACCES"), "EPERM", "ok")),
    "unix-connect": Attempt("import socket\ns = socket.socket(socket.AF_UNIX)\ns.connect(ctx['unix_path'])",
                            _expect("EPERM", "ok", "EPERM", "ok")),
    "abstract-unix-connect": Attempt(
        "import socket\ns = socket.socket(socket.AF_UNIX)\ns.connect(ctx['abstract_name'])",
        _expect("EPERM", _since(6, "EPERM"), "EPERM", "ok")),
    "socketpair-sendto-an-address": Attempt(
        "import socket\na, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)\n"
        "a.sendto(b'x', ctx['dgram_path'])", _expect("EPERM", "ok", "EPERM", "ok")),
    "tiocsti": Attempt("import fcntl, termios\nfcntl.ioctl(2, termios.TIOCSTI, b'x')",
                       _expect("EPERM", "ENOTTY", "EPERM", "ENOTTY")),
    "tiocsti-with-high-bits": Attempt(CTYPES_CALL + "check(libc.ioctl(2, ctypes.c_ulong(0x1_0000_5412), b'x'))",
                                      _expect("EPERM", "ENOTTY", "EPERM", "ENOTTY")),
    "clone3": Attempt(CTYPES_CALL + "check(libc.syscall(ctypes.c_long(435), None, ctypes.c_size_t(0)))",
                      _expect("ENOSYS", "EINVAL", "ENOSYS", "EINVAL")),
    "unshare": Attempt(CTYPES_CALL + "check(libc.unshare(0x04000000))",  # CLONE_NEWUTS
                       _expect("EPERM", "ok" if os.geteuid() == 0 else "EPERM", "EPERM")),
    "io-uring-setup": Attempt(CTYPES_CALL + "params = ctypes.create_string_buffer(120)\n"
                              "os.close(check(libc.syscall(ctypes.c_long(425), ctypes.c_uint(4), params)))",
                              _expect("EPERM", "ok", "EPERM")),
    "ptrace-bystander": Attempt(CTYPES_CALL + "check(libc.ptrace(ctypes.c_long(16), ctypes.c_long(ctx['bystander']),"
                                " None, None))", _expect("EPERM", "EPERM", "EPERM")),  # PTRACE_ATTACH
    "signal-own-process-group": Attempt("os.kill(0, 0)", {"both": "EPERM", "seccomp": "EPERM", "none": "ok"}),
    "fork": Attempt("pid = os.fork()\nif pid == 0:\n    os._exit(0)\nos.waitpid(pid, 0)",
                    _expect("EPERM", "ok", "EPERM", "ok")),
    "posix-spawn": Attempt("os.waitpid(os.posix_spawn('/bin/true', ['true'], {}), 0)",
                           _expect("EPERM", "EACCES", "EPERM", "ok")),
    "subprocess": Attempt("import subprocess\nsubprocess.run(['true'], check=True)",
                          _expect("EPERM", "EACCES", "EPERM", "ok")),
    "signal-bystander": Attempt("import signal\nos.kill(ctx['bystander'], signal.SIGTERM)",
                                _expect("EPERM", _since(6, "EPERM"), "EPERM", "ok")),
    "exec-a-program-written-inside": Attempt(
        "import subprocess\npath = os.path.join(ctx['root'], 'true')\n"
        "fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o755)\nos.write(fd, ctx['program'].encode('latin-1'))\n"
        "os.close(fd)\nsubprocess.run([path], check=True)", _expect("EPERM", "EACCES", "EPERM", "ok")),
    "exec": Attempt("os.execv('/bin/true', ['true'])", _expect("EPERM", "EACCES", "EPERM")),
}
if os.uname().machine == "x86_64":
    ATTEMPTS["i386-syscall-abi"] = Attempt(I386_GETPID, {"both": "ENOSYS", "seccomp": "ENOSYS"})
    # glibc's fork() calls clone; the fork syscall itself (57) needs its own rule.
    ATTEMPTS["raw-fork-syscall"] = Attempt(
        CTYPES_CALL + "pid = check(libc.syscall(ctypes.c_long(57)))\nif pid == 0:\n    os._exit(0)\n"
        "os.waitpid(pid, 0)", {"both": "EPERM", "seccomp": "EPERM", "none": "ok"})


@dataclass
class Victims:
    """What outside the sandbox a confined program tries to reach."""

    outside: Path
    bystander: subprocess.Popen[bytes]
    tcp: socket.socket
    unix: socket.socket
    abstract: socket.socket
    dgram: socket.socket
    sockets: list[socket.socket] = field(default_factory=list)

    def ctx(self, root: Path) -> dict[str, object]:
        return {
            "root": str(root),
            "escaped": str(self.outside / "escaped.txt"),
            "escaped_dir": str(self.outside / "escaped-dir"),
            "victim": str(self.outside / "victim.txt"),
            "victim2": str(self.outside / "victim2.txt"),
            "bystander": self.bystander.pid,
            "secret": SECRET,
            "tcp_port": self.tcp.getsockname()[1],
            "unix_path": self.unix.getsockname(),
            "abstract_name": self.abstract.getsockname().decode("latin-1"),
            "dgram_path": self.dgram.getsockname(),
            "program": exit_zero_program(),
        }

    def accepted(self, listener: socket.socket) -> bool:
        listener.setblocking(False)
        try:
            conn, _ = listener.accept()
        except BlockingIOError:
            return False
        conn.close()
        return True

    def datagram_arrived(self) -> bool:
        self.dgram.setblocking(False)
        try:
            self.dgram.recv(16)
        except BlockingIOError:
            return False
        return True

    def close(self) -> None:
        self.bystander.kill()
        self.bystander.wait()
        for sock in (self.tcp, self.unix, self.abstract, self.dgram):
            sock.close()


def make_victims(base: Path) -> Victims:
    outside = base / "outside"
    outside.mkdir()
    for name in ("victim.txt", "victim2.txt"):
        (outside / name).write_text("intact")
        (outside / name).chmod(0o644)
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(4)
    unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    unix.bind(str(outside / "service.sock"))
    unix.listen(4)
    abstract = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    abstract.bind(f"\0neuraldbg-confine-test-{os.getpid()}-{base.name}")
    abstract.listen(4)
    dgram = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    dgram.bind(str(outside / "log.sock"))
    bystander = subprocess.Popen(["sleep", "300"], env={"API_KEY": SECRET, "PATH": os.environ["PATH"]})
    return Victims(outside, bystander, tcp, unix, abstract, dgram)


@dataclass
class Run:
    root: Path
    victims: Victims
    returncode: int
    stderr: str
    outcome: dict[str, object]

    @property
    def results(self) -> dict[str, dict[str, object]]:
        return self.outcome["results"]  # type: ignore[return-value]


def child_env() -> dict[str, str]:
    # Like the runner: the child starts without site, our import path in PYTHONPATH.
    paths = [p for p in sys.path if p and os.path.isdir(p)]
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": os.pathsep.join(paths)}


def run_confined(base: Path, kwargs: dict[str, object], attempts: dict[str, str], setup: str = "",
                 victims: Victims | None = None, root: Path | None = None) -> Run:
    if root is None:
        root = base / "root"
        root.mkdir()
    victims = victims if victims is not None else make_victims(base)
    spec = {"tracer_dir": str(CONFINE.parent), "root": str(root), "kwargs": kwargs, "setup": setup,
            "attempts": attempts, "ctx": victims.ctx(root)}
    harness = base / "harness.py"
    harness.write_text(HARNESS)
    done = subprocess.run([sys.executable, "-s", "-S", "-P", "-X", "utf8", str(harness)],
                          cwd=root if root.is_dir() else base,
                          input=json.dumps(spec), capture_output=True, text=True, timeout=TIMEOUT, env=child_env())
    lines = done.stdout.strip().splitlines()
    outcome = json.loads(lines[-1]) if lines else {"results": {}}
    return Run(root, victims, done.returncode, done.stderr, outcome)


def classify(result: dict[str, object]) -> str:
    if "ok" in result:
        return "ok"
    code = result.get("errno")
    if isinstance(code, int) and code in errno.errorcode and result["error"] not in ("ValueError",):
        return errno.errorcode[code]
    return str(result["error"])


@pytest.fixture(scope="module")
def layered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], Run]]:
    """One confined child per layer set, run on first use, with its own victims."""
    runs: dict[str, Run] = {}

    def get(layer_set: str) -> Run:
        if layer_set not in runs:
            attempts = {name: a.code for name, a in ATTEMPTS.items() if layer_set in a.expect}
            runs[layer_set] = run_confined(tmp_path_factory.mktemp(layer_set), LAYER_SETS[layer_set], attempts)
        return runs[layer_set]

    yield get
    for run in runs.values():
        run.victims.close()


CASES = [(name, layer_set) for name, attempt in ATTEMPTS.items() for layer_set in attempt.expect]


@pytest.mark.parametrize(("attempt", "layer_set"), CASES, ids=[f"{a}-{s}" for a, s in CASES])
def test_attempt(attempt: str, layer_set: str, layered: Callable[[str], Run]) -> None:
    run = layered(layer_set)
    assert "apply_error" not in run.outcome, run.outcome.get("apply_error")
    assert attempt in run.results, run.stderr[-2000:]
    result = run.results[attempt]
    assert classify(result) == ATTEMPTS[attempt].expect[layer_set], result


def test_nothing_reached_the_victims_of_the_confined_child(layered: Callable[[str], Run]) -> None:
    victims = layered("both").victims
    assert not (victims.outside / "escaped.txt").exists()
    assert not (victims.outside / "escaped-dir").exists()
    for name in ("victim.txt", "victim2.txt"):
        assert (victims.outside / name).read_text() == "intact"
        assert (victims.outside / name).stat().st_mode & 0o777 == 0o644
    assert victims.bystander.poll() is None
    assert not victims.accepted(victims.tcp)
    assert not victims.accepted(victims.unix)
    assert not victims.accepted(victims.abstract)
    assert not victims.datagram_arrived()


def test_the_unconfined_control_reached_every_victim(layered: Callable[[str], Run]) -> None:
    """The attacks work where nothing confines them: the refusals above are real."""
    victims = layered("none").victims
    assert (victims.outside / "escaped.txt").exists()
    assert (victims.outside / "victim.txt").read_text() == ""
    assert (victims.outside / "victim.txt").stat().st_mode & 0o777 == 0o666
    victims.bystander.wait(timeout=10)
    assert victims.bystander.returncode == -signal.SIGTERM
    assert victims.accepted(victims.tcp)
    assert victims.accepted(victims.unix)
    assert victims.accepted(victims.abstract)
    assert victims.datagram_arrived()


def test_the_description_names_the_kernel_abi_and_both_layers(layered: Callable[[str], Run]) -> None:
    description = str(layered("both").outcome["description"])
    assert description.startswith(f"Landlock ABI {ABI} (writes")
    assert description.endswith("+ seccomp (processes, sockets, signals, namespaces, kernel interfaces)")
    assert ("signals, abstract sockets" in description) is (ABI >= 6)
    assert str(layered("landlock").outcome["description"]).startswith(f"Landlock ABI {ABI} ")
    assert str(layered("seccomp").outcome["description"]).startswith("seccomp (")


def test_probe_describes_this_machine_without_confining_the_caller(tmp_path: Path) -> None:
    description, why = confine.probe()
    assert (description, why) == (layered_description(), "")
    (tmp_path / "still-writable").write_text("x")  # the test process is not confined
    socket.socket(socket.AF_INET, socket.SOCK_DGRAM).close()
    threading.Thread(target=lambda: None).start()


def layered_description() -> str:
    return (f"Landlock ABI {ABI} (writes, reads of /proc and devices{', TCP' if ABI >= 4 else ''}"
            f"{', signals, abstract sockets' if ABI >= 6 else ''})"
            " + seccomp (processes, sockets, signals, namespaces, kernel interfaces)")


# -- failures: OSError, and nothing confined where it can tell beforehand ---------

WRITE_OUTSIDE = {"write-outside": "open(ctx['escaped'], 'w').write('x')",
                 "fork": "pid = os.fork()\nif pid == 0:\n    os._exit(0)\nos.waitpid(pid, 0)"}
NO_LANDLOCK = "confine.LANDLOCK_SYSCALLS = {m: (1021, 1022, 1023) for m in confine.LANDLOCK_SYSCALLS}"


def _failed_run(tmp_path: Path, setup: str = "", kwargs: dict[str, object] | None = None,
                root: Path | None = None) -> tuple[tuple[str, int | None, str], Run]:
    """(exception kind, errno, message) of the failed apply(), and the run after it."""
    run = run_confined(tmp_path, kwargs or {}, WRITE_OUTSIDE, setup=setup, root=root)
    run.victims.close()
    assert "apply_error" in run.outcome, run.outcome
    error = run.outcome["apply_error"]
    assert isinstance(error, list) and len(error) == 3, error
    code = error[1]
    return (str(error[0]), code if isinstance(code, int) else None, str(error[2])), run


def test_a_failing_landlock_syscall_raises_oserror_and_confines_nothing(tmp_path: Path) -> None:
    # Unassigned syscall numbers: the kernel answers ENOSYS, as one without Landlock does.
    (kind, code, message), run = _failed_run(tmp_path, NO_LANDLOCK)
    assert (kind, code) == ("OSError", errno.ENOSYS)
    assert "the kernel has no Landlock" in message
    assert {name: classify(r) for name, r in run.results.items()} == {"write-outside": "ok", "fork": "ok"}


def test_a_missing_libseccomp_raises_oserror_before_landlock_is_applied(tmp_path: Path) -> None:
    (kind, code, message), run = _failed_run(tmp_path, "confine.LIBSECCOMP = 'libseccomp-neuraldbg-missing.so.2'")
    assert kind == "OSError" and "cannot load libseccomp-neuraldbg-missing.so.2" in message
    assert {name: classify(r) for name, r in run.results.items()} == {"write-outside": "ok", "fork": "ok"}


def test_a_process_with_threads_is_refused(tmp_path: Path) -> None:
    setup = "import threading\nthreading.Thread(target=threading.Event().wait, daemon=True).start()"
    (kind, code, message), run = _failed_run(tmp_path, setup)
    assert (kind, code) == ("OSError", errno.EBUSY)
    assert "before threads start (2 running)" in message
    assert classify(run.results["write-outside"]) == "ok"


def test_a_missing_root_raises_oserror_and_confines_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    (kind, code, message), run = _failed_run(tmp_path, root=missing)
    assert (kind, code, message) == ("OSError", errno.ENOENT, f"the sandbox root {missing} cannot be opened")
    assert {name: classify(r) for name, r in run.results.items()} == {"write-outside": "ok", "fork": "ok"}


def test_an_abi_above_the_kernels_is_refused(tmp_path: Path) -> None:
    (kind, code, message), _ = _failed_run(tmp_path, kwargs={"abi": KERNEL_ABI + 1})
    assert (kind, code) == ("OSError", errno.EINVAL)
    assert f"the kernel has {KERNEL_ABI}" in message


def test_probe_says_why_not_where_landlock_is_missing(tmp_path: Path) -> None:
    code = (f"import sys\nsys.path.insert(0, {str(CONFINE.parent)!r})\nimport confine\n{NO_LANDLOCK}\n"
            "print(confine.probe())")
    done = subprocess.run([sys.executable, "-s", "-S", "-P", "-c", code], capture_output=True, text=True,
                          timeout=TIMEOUT, env=child_env(), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("(None, 'the kernel has no Landlock")


# -- the script, the lead's start-up probe ------------------------------------------

def test_the_script_confines_itself_and_prints_the_description(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-s", "-S", "-P", str(CONFINE), str(tmp_path)], capture_output=True,
                          text=True, timeout=TIMEOUT, env={"PATH": os.environ.get("PATH", "/usr/bin")}, cwd=tmp_path)
    assert (done.returncode, done.stdout, done.stderr) == (0, layered_description() + "\n", "")
    assert (tmp_path / "probe").read_text() == "ok"  # its self-check wrote inside
    assert not list(tmp_path.parent.glob(".neuraldbg-confine-*"))  # and could not write next to it


def test_the_script_says_why_it_cannot_confine(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    done = subprocess.run([sys.executable, "-s", "-S", "-P", str(CONFINE), str(missing)], capture_output=True,
                          text=True, timeout=TIMEOUT, env={"PATH": os.environ.get("PATH", "/usr/bin")}, cwd=tmp_path)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr == f"cannot confine: the sandbox root {missing} cannot be opened\n"

"""Hostile programs under every isolation level this machine has.

Native code (a C extension the program imports, tests/hostile/hostile.c)
raises no audit event, so it shows what each level really contains: each
attack must be contained exactly on the levels that claim it, and it must
get through on the levels that do not (so that every check here can fail).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from neuraldbg.trace import Trace
from neuraldbg.tracer import Limits, isolation, run_trace

REPO = Path(__file__).resolve().parents[1]
LIMITS = Limits(wall_seconds=20, cpu_seconds=5)
AVAILABLE = [level for level in isolation.LEVELS if isolation.detect(level).level == level]


def _landlock_abi() -> int:
    found = isolation.detect("landlock")
    return int(found.detail.split("ABI ")[1].split()[0]) if "ABI " in found.detail else 0


# Which levels claim to contain each attack.
CLAIMS = {
    "write-outside": {"bwrap", "landlock"},
    "spawn": {"bwrap", "landlock"},
    "tcp-connect": {"bwrap", "landlock"},
    "signal-other-process": {"bwrap"} | ({"landlock"} if _landlock_abi() >= 6 else set()),
    "read-other-process-environ": {"bwrap", "landlock"},
    "read-secret-folder": {"bwrap"},
}


def test_this_machine_has_the_levels_ci_expects() -> None:
    # CI runs as root: `make test` installs bubblewrap, and the kernel has Landlock.
    assert AVAILABLE[-1] == "audit"
    if os.geteuid() == 0:
        assert "bwrap" in AVAILABLE, isolation.detect("bwrap").skipped


@pytest.fixture(scope="session")
def hostile_module(tmp_path_factory: pytest.TempPathFactory) -> Path:
    gcc = shutil.which("gcc") or shutil.which("cc")
    assert gcc, "a C compiler is needed to build tests/hostile/hostile.c (apt-get install gcc)"
    out = tmp_path_factory.mktemp("hostile") / f"hostile{sysconfig.get_config_var('EXT_SUFFIX')}"
    include = sysconfig.get_paths()["include"]
    subprocess.run([gcc, "-shared", "-fPIC", "-O1", f"-I{include}", str(REPO / "tests/hostile/hostile.c"),
                    "-o", str(out)], check=True, capture_output=True)
    return out


@dataclass
class Victim:
    """Things outside the sandbox a program should not reach."""

    outside: Path  # a folder the program must not write to
    home: Path  # $HOME, with a secret folder
    listener: socket.socket
    bystander: subprocess.Popen[bytes]  # a process of ours, with a secret in its environment

    @property
    def port(self) -> int:
        return int(self.listener.getsockname()[1])

    def was_connected(self) -> bool:
        self.listener.setblocking(False)
        try:
            conn, _ = self.listener.accept()
        except BlockingIOError:
            return False
        conn.close()
        return True


SECRET = "sk-neuraldbg-test-secret"


@pytest.fixture
def victim(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Victim]:
    outside = tmp_path / "outside"
    outside.mkdir()
    # A home outside /tmp (which bubblewrap hides whole), so that what hides
    # its secret folder is the secret-folder rule itself.
    with tempfile.TemporaryDirectory(prefix=".pytest-home-", dir=REPO) as home:
        (Path(home) / ".ssh").mkdir()
        (Path(home) / ".ssh/id_ed25519").write_text(SECRET)
        monkeypatch.setenv("HOME", home)
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        bystander = subprocess.Popen(["sleep", "120"], env={"API_KEY": SECRET, "PATH": os.environ["PATH"]})
        try:
            yield Victim(outside, Path(home), listener, bystander)
        finally:
            bystander.kill()
            bystander.wait()
            listener.close()


def hostile_trace(tmp_path: Path, module: Path, body: str, level: str) -> Trace:
    project = tmp_path / "project"
    project.mkdir(exist_ok=True)
    shutil.copy(module, project / module.name)
    source = "import hostile\n\ndef f():\n" + "".join(f"    {line}\n" for line in body.splitlines())
    (project / "prog.py").write_text(source)
    return run_trace(source, "f()", function="f", path=str(project / "prog.py"), limits=LIMITS,
                     isolation=level)  # type: ignore[arg-type]


def returned(trace: Trace) -> str:
    assert trace.status == "complete", trace.error
    assert trace.frames[-1].event == "return", trace.frames[-1]
    return trace.frames[-1].value or ""


@pytest.mark.parametrize("level", AVAILABLE)
def test_native_write_outside(level: str, tmp_path: Path, hostile_module: Path, victim: Victim) -> None:
    target = victim.outside / "escaped.txt"
    value = returned(hostile_trace(tmp_path, hostile_module, f"return hostile.write_file({str(target)!r})", level))
    contained = level in CLAIMS["write-outside"]
    assert target.exists() is not contained, value
    assert (value == "'ok'") is not contained


@pytest.mark.parametrize("level", AVAILABLE)
def test_native_spawn(level: str, tmp_path: Path, hostile_module: Path, victim: Victim) -> None:
    marker = victim.outside / "touched"
    touch = shutil.which("touch")
    assert touch
    value = returned(hostile_trace(tmp_path, hostile_module, f"return hostile.spawn({touch!r}, {str(marker)!r})", level))
    assert marker.exists() is not (level in CLAIMS["spawn"]), value


@pytest.mark.parametrize("level", AVAILABLE)
def test_native_tcp_connect(level: str, tmp_path: Path, hostile_module: Path, victim: Victim) -> None:
    value = returned(hostile_trace(tmp_path, hostile_module, f"return hostile.tcp_connect({victim.port})", level))
    assert victim.was_connected() is not (level in CLAIMS["tcp-connect"]), value


@pytest.mark.parametrize("level", AVAILABLE)
def test_native_signal_to_another_process(level: str, tmp_path: Path, hostile_module: Path, victim: Victim) -> None:
    pid = victim.bystander.pid
    value = returned(hostile_trace(tmp_path, hostile_module, f"return hostile.send_signal({pid}, 9)", level))
    try:
        victim.bystander.wait(timeout=2)
    except subprocess.TimeoutExpired:
        pass
    alive = victim.bystander.poll() is None
    assert alive is (level in CLAIMS["signal-other-process"]), value


@pytest.mark.parametrize("level", AVAILABLE)
def test_native_read_of_another_process_environment(level: str, tmp_path: Path, hostile_module: Path,
                                                    victim: Victim) -> None:
    path = f"/proc/{victim.bystander.pid}/environ"
    value = returned(hostile_trace(tmp_path, hostile_module, f"return hostile.read_file({path!r})", level))
    assert (SECRET in value) is not (level in CLAIMS["read-other-process-environ"]), value


@pytest.mark.parametrize("level", AVAILABLE)
def test_native_read_of_a_secret_folder(level: str, tmp_path: Path, hostile_module: Path, victim: Victim) -> None:
    path = str(victim.home / ".ssh/id_ed25519")
    value = returned(hostile_trace(tmp_path, hostile_module, f"return hostile.read_file({path!r})", level))
    assert (SECRET in value) is not (level in CLAIMS["read-secret-folder"]), value


@pytest.mark.parametrize("level", AVAILABLE)
def test_the_program_still_imports_its_siblings_and_writes_its_sandbox(level: str, tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "helper.py").write_text("def twice(x):\n    return 2 * x\n")
    source = ("import json, helper, tempfile\n\ndef f():\n    with open('out.txt', 'w') as out:\n"
              "        out.write('x')\n    tempfile.mkstemp()\n    return helper.twice(json.loads('21'))\n")
    (project / "prog.py").write_text(source)
    trace = run_trace(source, "f()", function="f", path=str(project / "prog.py"), limits=LIMITS,
                      isolation=level)  # type: ignore[arg-type]
    assert returned(trace) == "42"


# -- falling back ---------------------------------------------------------------

BROKEN_BWRAP = """#!/bin/sh
# Works for the start-up probe, fails for the tracer child: a bubblewrap that
# breaks only under real use.
for arg in "$@"; do
  case "$arg" in *child.py) echo "bwrap: setting up uid map: Permission denied" >&2; exit 1;; esac
done
while [ "$1" != "--" ]; do shift; done
shift
exec "$@"
"""

FALLBACK_PROGRAM = """
import logging, sys
logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(message)s")
from neuraldbg.tracer import run_trace, isolation
for _ in range(3):
    trace = run_trace("def f(x):\\n    return x + 1\\n", "f(1)")
    print(trace.status, trace.frames[-1].value)
print(isolation.current().level)
"""


def test_a_bubblewrap_that_fails_at_run_time_falls_back_one_level_with_one_log_line(tmp_path: Path) -> None:
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "bwrap").write_text(BROKEN_BWRAP)
    (fake / "bwrap").chmod(0o755)
    env = {**os.environ, "PATH": f"{fake}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run([sys.executable, "-c", FALLBACK_PROGRAM], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.split("\n")
    assert lines[:3] == ["complete 2"] * 3
    assert lines[3] in ("landlock", "audit")
    warnings = [line for line in done.stderr.splitlines() if line.startswith("WARNING")]
    assert len(warnings) == 1 and "bwrap failed (bwrap: setting up uid map: Permission denied)" in warnings[0]


def test_a_missing_bubblewrap_is_skipped_at_detection(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no bwrap on it
    found = isolation.detect()
    assert found.level != "bwrap"
    assert any("bubblewrap is not installed" in why for why in found.skipped)


def test_the_cap_from_the_environment_is_honoured() -> None:
    program = "from neuraldbg.tracer import isolation; i = isolation.current(); print(i.level, i.weak, i.skipped)"
    done = subprocess.run([sys.executable, "-c", program], env={**os.environ, isolation.ENV_CAP: "audit"},
                          capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "audit True ('capped by NEURALDBG_ISOLATION=audit',)", done.stderr


def test_doctor_says_which_sandbox_runs_the_code() -> None:
    done = subprocess.run([sys.executable, "-m", "neuraldbg", "doctor"], capture_output=True, text=True, timeout=120,
                          env={**os.environ, isolation.ENV_CAP: "audit"})
    assert "Exec tracer sandbox: audit: audit hooks only\n" in done.stdout, done.stdout + done.stderr
    assert f"  does not stop: {isolation.WEAKNESSES['audit']}\n" in done.stdout
    assert "  not used: capped by NEURALDBG_ISOLATION=audit" in done.stdout


def test_the_sandbox_benchmark_prints_a_figure_per_available_level() -> None:
    done = subprocess.run([sys.executable, str(REPO / "benchmarks/bench_sandbox.py"), "--runs", "2"],
                          capture_output=True, text=True, timeout=300, cwd=REPO)
    assert done.returncode == 0, done.stderr
    figures = [line.split(" | ")[0].removeprefix("FIGURE ") for line in done.stdout.splitlines()
               if line.startswith("FIGURE ")]
    names = {"bwrap": "sandbox.bwrap_overhead_ms", "landlock": "sandbox.landlock_overhead_ms"}
    assert figures == ["sandbox.audit_trace_ms", *(names[lv] for lv in AVAILABLE if lv != "audit")]

"""How strongly the tracer child is isolated: the strongest level this machine
offers, chosen once per process.

- ``bwrap``: the child runs inside bubblewrap: a read-only root, only the
  run's temporary directory writable, tmpfs over ``/tmp`` and the user's
  secret folders, its own ``/proc`` (no view of the parent), no network, and
  its own PID, IPC and UTS namespaces; it dies with its parent.
- ``landlock``: the child confines itself before user code runs (Landlock
  for file writes, TCP and signals; seccomp for processes and sockets; see
  ``confine.py``).
- ``audit``: the audit hooks alone (``sandbox.py``), which every level also
  keeps for clear one-line refusals.

``NEURALDBG_ISOLATION=landlock|audit`` caps the level (for machines where a
stronger one starts but misbehaves). A level that fails to start is dropped
with one log line and the next one is used.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

logger = logging.getLogger(__name__)

Level = Literal["bwrap", "landlock", "audit"]
LEVELS: tuple[Level, ...] = ("bwrap", "landlock", "audit")  # strongest first
ENV_CAP = "NEURALDBG_ISOLATION"
PROBE_SECONDS = 10.0
CONFINE_SCRIPT = Path(__file__).with_name("confine.py")

# What each level leaves open, for doctor, the status line and the README.
WEAKNESSES: dict[Level, str] = {
    "bwrap": "the program can read the files you can read outside /tmp and your secret folders, and use CPU and memory"
    " up to the limits; a kernel or bubblewrap bug would let it out",
    "landlock": "the program can read files you can read outside /proc and /dev (your secret folders and "
    "/tmp included) and list any directory; where the kernel's Landlock ABI is below 6, seccomp alone keeps "
    "its signals in; a kernel bug would let it out",
    "audit": "audit hooks are not a security boundary: a program written to escape (native code, "
    "interpreter internals) can write files, start processes and use the network as you",
}

# Home-relative folders and files hidden from the child under bubblewrap.
SECRET_DIRS = (".ssh", ".aws", ".gnupg", ".azure", ".kube", ".docker", ".password-store", ".config/gcloud",
               ".config/gh", ".config/hub", ".config/op", ".local/share/keyrings", ".mozilla", ".config/chromium",
               ".config/google-chrome", ".huggingface", ".cache/huggingface", ".terraform.d")
SECRET_FILES = (".netrc", ".git-credentials", ".pypirc", ".npmrc", ".pgpass", ".bash_history", ".python_history",
                ".zsh_history", ".config/neuraldbg/credentials")


@dataclass(frozen=True)
class Isolation:
    level: Level
    detail: str  # what is in use, e.g. "bubblewrap 0.8.0"
    skipped: tuple[str, ...] = field(default=())  # why each stronger level is not used

    @property
    def weak(self) -> bool:
        return self.level == "audit"

    def summary(self) -> str:
        why = f" ({'; '.join(self.skipped)})" if self.skipped else ""
        return f"sandbox: {self.level}: {self.detail}{why}"

    def weaknesses(self) -> str:
        return WEAKNESSES[self.level]

    def as_json(self) -> dict[str, object]:
        return {"level": self.level, "detail": self.detail, "weak": self.weak, "doesNotStop": self.weaknesses()}


AUDIT_ONLY = Isolation("audit", "audit hooks only")

_lock = threading.Lock()
_current: Isolation | None = None
_pinned: dict[str, Isolation] = {}


def current() -> Isolation:
    """The level for this process, probed on first use."""
    global _current
    with _lock:
        if _current is None:
            cap = os.environ.get(ENV_CAP) or None
            _current = detect(cap, f"capped by {ENV_CAP}={cap}")
            if _current.weak:
                logger.warning("%s: %s", _current.summary(), _current.weaknesses())
            else:
                logger.info("%s", _current.summary())
        return _current


def known() -> Isolation | None:
    """The level if it has been probed already (never blocks on a probe)."""
    return _current


def demote(failed: Isolation, why: str) -> Isolation:
    """``failed`` did not start a child: use the next level from now on."""
    global _current
    with _lock:
        if _current is not None and _current.level != failed.level:
            return _current  # another run already moved on
        nxt = detect(LEVELS[LEVELS.index(failed.level) + 1] if failed.level != "audit" else "audit")
        _current = replace(nxt, skipped=(*failed.skipped, f"{failed.level}: {why}", *nxt.skipped))
        logger.warning("sandbox: %s failed (%s); using %s from now on", failed.level, why, _current.level)
        return _current


def pinned(level: Level) -> Isolation:
    """Exactly ``level`` (for tests and benchmarks), or an error saying why not;
    probed once per process and level."""
    with _lock:
        found = _pinned.get(level)
        if found is None:
            found = _pinned[level] = detect(level)
    if found.level != level:
        raise RuntimeError(f"isolation level {level} is not available here: {'; '.join(found.skipped)}")
    return found


def detect(cap: str | None = None, capped_by: str | None = None) -> Isolation:
    """The strongest working level at or below ``cap``."""
    if cap is not None and cap not in LEVELS:
        logger.warning("%s=%s is not one of %s; ignored", ENV_CAP, cap, ", ".join(LEVELS))
        cap = None
    skipped: list[str] = []
    start = LEVELS.index(cap) if cap else 0  # type: ignore[arg-type]
    if start > 0:
        skipped.append(capped_by or f"capped at {cap}")
    for level in LEVELS[start:]:
        if level == "audit":
            return replace(AUDIT_ONLY, skipped=tuple(skipped))
        detail, why = _probe_bwrap() if level == "bwrap" else _probe_landlock()
        if detail is not None:
            return Isolation(level, detail, tuple(skipped))
        skipped.append(f"{level}: {why}")
    raise AssertionError("unreachable")  # pragma: no cover


def _probe_bwrap() -> tuple[str | None, str]:
    if not sys.platform.startswith("linux"):
        return None, "Linux only"
    exe = shutil.which("bwrap")
    if exe is None:
        return None, "bubblewrap is not installed (Debian/Ubuntu: apt-get install bubblewrap)"
    with tempfile.TemporaryDirectory(prefix="neuraldbg-probe-") as sandbox:
        command = bwrap_command([sys.executable or "python3", "-S", "-c", "pass"], sandbox, [], exe=exe)
        ok, why = _run_probe(command, sandbox)
    if not ok:
        return None, why
    version = _run_probe([exe, "--version"], None)[1].strip() or "bubblewrap"
    return f"{version} (read-only root, private /tmp and /proc, no network, own PID namespace)", ""


def _probe_landlock() -> tuple[str | None, str]:
    if not CONFINE_SCRIPT.is_file():
        return None, "confine.py is missing"
    with tempfile.TemporaryDirectory(prefix="neuraldbg-probe-") as sandbox:
        ok, out = _run_probe([sys.executable or "python3", "-s", "-S", "-P", str(CONFINE_SCRIPT), sandbox],
                             sandbox)
    return (out.strip() or "Landlock + seccomp", "") if ok else (None, out.strip() or "probe failed")


def _run_probe(command: list[str], cwd: str | None) -> tuple[bool, str]:
    """(exit 0, stdout) or (False, why): a probe never raises, and gets none
    of our environment (an API key may be in it)."""
    try:
        done = subprocess.run(command, cwd=cwd, env=probe_env(), capture_output=True, timeout=PROBE_SECONDS,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError) as exc:
        return False, f"cannot start: {exc}"
    if done.returncode != 0:
        last = done.stderr.decode("utf-8", "replace").strip().splitlines()
        return False, f"exit code {done.returncode}: {last[-1] if last else 'no message'}"
    return True, done.stdout.decode("utf-8", "replace")


def probe_env() -> dict[str, str]:
    """The environment of a probe: none of ours (an API key may be in it)."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}


def importable_paths() -> list[str]:
    """Our import path (site-packages, editable installs) for the child,
    which starts without ``site`` for speed."""
    cwd = os.getcwd()
    return [p for p in sys.path if p and p not in (".", cwd) and os.path.exists(p)]


def bwrap_command(argv: list[str], sandbox: str, readable: list[str], exe: str = "bwrap") -> list[str]:
    """``argv`` inside bubblewrap, with ``sandbox`` the only writable place and
    ``readable`` (the interpreter, its imports, the user's folder) visible
    even where they lie under a hidden folder such as /tmp."""
    hidden_dirs = _hidden_dirs()
    args = [exe, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    for path in hidden_dirs:
        args += ["--tmpfs", path]
    for path in _secret_files():
        args += ["--ro-bind", "/dev/null", path]
    for path in _uncover(readable, hidden_dirs):
        args += ["--ro-bind", path, path]
    args += ["--bind", sandbox, sandbox, "--chdir", sandbox,
             "--unshare-all", "--die-with-parent", "--new-session", "--", *argv]
    return args


def _homes() -> list[Path]:
    homes = {Path(os.path.expanduser("~"))}
    if os.environ.get("HOME"):
        homes.add(Path(os.environ["HOME"]))
    return [h for h in homes if h.is_absolute() and h != Path("/")]


def _hidden_dirs() -> list[str]:
    temps = {"/tmp", "/var/tmp", "/dev/shm", os.path.realpath(tempfile.gettempdir())}
    found = [t for t in sorted(temps) if os.path.isdir(t) and not os.path.islink(t)]
    for home in _homes():
        for name in SECRET_DIRS:
            path = home / name
            if path.is_dir() and not path.is_symlink():
                found.append(str(path))
    return found


def _secret_files() -> list[str]:
    return [str(home / name) for home in _homes() for name in SECRET_FILES
            if (home / name).is_file() and not (home / name).is_symlink()]


def _uncover(readable: list[str], hidden: list[str]) -> list[str]:
    """The readable paths that lie under a hidden folder, outermost first."""
    real = sorted({os.path.realpath(p) for p in readable if os.path.exists(p)}, key=len)
    kept: list[str] = []
    for path in real:
        if path in hidden:  # a whole hidden folder (e.g. a script run from /tmp) stays hidden
            continue
        under_hidden = any(path.startswith(h.rstrip("/") + "/") for h in hidden)
        if under_hidden and not any(path.startswith(k.rstrip("/") + "/") or path == k for k in kept):
            kept.append(path)
    return kept

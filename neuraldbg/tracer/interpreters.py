"""The Python that runs the user's program: the server's own, or the project's
interpreter (a venv, a conda env), asked once per path what it imports from.

The child starts without ``site`` (``-S``) for speed, so the import path it
gets is the one that interpreter has with ``site``; under bubblewrap that
interpreter's prefix and import path are made readable (isolation.py).
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass

from neuraldbg.tracer import isolation as iso

MIN_VERSION = (3, 10)  # the oldest Python the child's code runs on (tests/test_real_code_interpreter.py)
PROBE_SECONDS = 10.0
# Printed by the interpreter being asked; Python 3 syntax only, so that an
# old interpreter answers with its version instead of a SyntaxError.
_PROBE = (
    "import json, sys; print(json.dumps({'version': list(sys.version_info[:2]), 'prefix': sys.prefix,"
    " 'base_prefix': getattr(sys, 'base_prefix', sys.prefix), 'path': sys.path}))"
)


class InterpreterError(Exception):
    """The interpreter cannot run the tracer child; the message is for the user."""


@dataclass(frozen=True)
class Interpreter:
    executable: str  # as given: a venv's bin/python stays the venv's (its pyvenv.cfg makes it the venv)
    version: tuple[int, int]
    prefix: str
    base_prefix: str
    sys_path: tuple[str, ...]  # what its programs import from (site-packages included)

    def readable(self) -> list[str]:
        """What the child needs to read to start and import under bubblewrap."""
        return [self.prefix, self.base_prefix, os.path.dirname(self.executable),
                os.path.dirname(os.path.realpath(self.executable)), *self.sys_path]

    def flags(self) -> list[str]:
        """No user site, no site, no script folder on sys.path (``-P`` is
        3.11+; older ones get the child's folder, which the child removes)."""
        return ["-s", "-S", "-P"] if self.version >= (3, 11) else ["-s", "-S"]


def server() -> Interpreter:
    """The interpreter this process runs on (its import path as it is now)."""
    return Interpreter(sys.executable or "python3", (sys.version_info[0], sys.version_info[1]), sys.prefix,
                       sys.base_prefix, tuple(iso.importable_paths()))


def find(python: str | None) -> Interpreter:
    """``python`` (a path), or the server's own for None or ""; raises
    InterpreterError saying why it cannot be used."""
    if not python or os.path.abspath(python) == os.path.abspath(sys.executable or ""):
        return server()
    executable = os.path.abspath(os.path.expanduser(python))
    try:
        stamp = os.stat(executable).st_mtime_ns  # a rebuilt venv is asked again
    except OSError as exc:
        raise InterpreterError(f"the interpreter {python} cannot be used: {exc.strerror or exc}") from None
    if not os.access(executable, os.X_OK) or os.path.isdir(executable):
        raise InterpreterError(f"the interpreter {python} cannot be used: not an executable file")
    return _probe(executable, stamp)


@functools.lru_cache(maxsize=32)
def _probe(executable: str, stamp: int) -> Interpreter:
    del stamp  # part of the cache key only
    with tempfile.TemporaryDirectory(prefix="neuraldbg-python-") as cwd:  # '' on its sys.path is this, not ours
        try:
            done = subprocess.run([executable, "-c", _PROBE], cwd=cwd, capture_output=True, timeout=PROBE_SECONDS,
                                  stdin=subprocess.DEVNULL, env=iso.probe_env())
        except (OSError, subprocess.SubprocessError) as exc:
            raise InterpreterError(f"the interpreter {executable} did not start: {exc}") from None
        if done.returncode != 0:
            last = done.stderr.decode("utf-8", "replace").strip().splitlines()
            why = last[-1] if last else f"exit code {done.returncode}"
            raise InterpreterError(f"the interpreter {executable} did not answer: {why}")
        try:
            answer = json.loads(done.stdout)
            version = (int(answer["version"][0]), int(answer["version"][1]))
            paths = [p for p in answer["path"] if isinstance(p, str) and p and os.path.realpath(p) != os.path.realpath(cwd)]
            found = Interpreter(executable, version, str(answer["prefix"]), str(answer["base_prefix"]),
                                tuple(p for p in paths if os.path.exists(p)))
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            raise InterpreterError(f"the interpreter {executable} gave an odd answer ({exc})") from None
    if version < MIN_VERSION:
        raise InterpreterError(f"the interpreter {executable} is Python {version[0]}.{version[1]}; the tracer needs "
                               f"Python {MIN_VERSION[0]}.{MIN_VERSION[1]} or later")
    return found

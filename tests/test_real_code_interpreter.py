"""Real code: the tracer child runs under the interpreter of the user's
project (``neuraldbg.interpreter``), on every isolation level this machine
has, and the child's own code stays runnable on Python 3.10 to 3.13.

Only this machine's Python is installed, so "the project's interpreter" is a
venv the test makes, holding a package the server's interpreter lacks."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from neuraldbg.config import Settings
from neuraldbg.tracer import Limits, interpreters, isolation, run_trace
from neuraldbg.tracer import runner as tracer_runner

LIMITS = Limits(wall_seconds=20, cpu_seconds=5)
AVAILABLE = [level for level in isolation.LEVELS if isolation.detect(level).level == level]
TRACER = Path(interpreters.__file__).parent
# The files the child runs (loaded by path, standard library only).
CHILD_FILES = ("child.py", "recorder.py", "sandbox.py", "confine.py", "encode.py", "reprs.py", "limits.py")
PROGRAM = "import sys\nimport onlyinvenv\n\n\ndef f():\n    return onlyinvenv.VALUE + 1, sys.executable\n"


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv (no pip: nothing is downloaded) whose site-packages holds onlyinvenv."""
    root = tmp_path_factory.mktemp("project") / ".venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True, capture_output=True)
    python = root / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    package = Path(purelib) / "onlyinvenv"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("VALUE = 41\n")
    return root


def program(tmp_path: Path) -> str:
    path = tmp_path / "uses_venv.py"
    path.write_text(PROGRAM)
    return str(path)


@pytest.mark.parametrize("level", AVAILABLE)
def test_the_projects_interpreter_imports_its_own_packages(venv: Path, tmp_path: Path, level: str) -> None:
    with pytest.raises(ImportError):
        __import__("onlyinvenv")  # the server's interpreter does not have it
    trace = run_trace(PROGRAM, "f()", path=program(tmp_path), limits=LIMITS, isolation=level,
                      python=str(venv / "bin" / "python"))
    assert trace.status == "complete" and trace.error is None, trace.error
    assert ast.literal_eval(trace.frames[-1].value) == (42, str(venv / "bin" / "python"))


@pytest.mark.parametrize("level", AVAILABLE)
def test_without_it_the_import_fails_clearly(venv: Path, tmp_path: Path, level: str) -> None:
    trace = run_trace(PROGRAM, "f()", path=program(tmp_path), limits=LIMITS, isolation=level)
    assert trace.status == "error"
    assert trace.error == "ModuleNotFoundError: No module named 'onlyinvenv'"


def test_an_unusable_interpreter_is_a_clear_error(tmp_path: Path) -> None:
    missing = run_trace(PROGRAM, "f()", path=program(tmp_path), python=str(tmp_path / "no-python"))
    assert missing.status == "error" and missing.error.startswith(f"the interpreter {tmp_path / 'no-python'} cannot")
    old = tmp_path / "python2.7"  # answers like a Python 2.7 would (its version) but is a script
    old.write_text("#!/bin/sh\necho '{\"version\": [2, 7], \"prefix\": \"/\", \"base_prefix\": \"/\", \"path\": []}'\n")
    old.chmod(0o755)
    trace = run_trace(PROGRAM, "f()", path=program(tmp_path), python=str(old))
    assert trace.status == "error" and "is Python 2.7; the tracer needs Python 3.10 or later" in (trace.error or "")


def test_a_python_without_dash_p_still_hides_the_tracers_modules(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Python 3.10 has no -P: the child's folder (child.py, sandbox.py, limits.py)
    starts on sys.path and the child removes it before the program imports."""
    this = interpreters.server()
    as_310 = interpreters.Interpreter(this.executable, (3, 10), this.prefix, this.base_prefix, this.sys_path)
    assert "-P" not in as_310.flags()
    monkeypatch.setattr(tracer_runner, "find_interpreter", lambda python: as_310)
    (tmp_path / "limits.py").write_text("MINE = True\n")  # a user module named like one of the tracer's
    source = "import sys\nimport limits\n\n\ndef g():\n    return limits.MINE, any(p.endswith('tracer') for p in sys.path)\n"
    path = tmp_path / "prog.py"
    path.write_text(source)
    for level in AVAILABLE:
        trace = run_trace(source, "g()", path=str(path), limits=LIMITS, isolation=level)
        assert trace.error is None and trace.frames[-1].value == "(True, False)", (level, trace.error)


@pytest.mark.parametrize("name", CHILD_FILES)
def test_the_child_code_parses_as_python_3_10(name: str) -> None:
    text = (TRACER / name).read_text()
    ast.parse(text, filename=name, feature_version=(3, 10))


# Attributes and modules newer than 3.10 that the child must not use unguarded
# (getattr(x, "name", fallback) or an import inside try/except ImportError).
NEWER_ATTRIBUTES = {"co_qualname", "co_positions", "add_note", "exception", "getmembers_static", "monitoring",
                    "co_exceptiontable", "f_generator", "batched"}
NEWER_NAMES = {"ExceptionGroup", "BaseExceptionGroup", "tomllib", "EncodingWarning"}


@pytest.mark.parametrize("name", CHILD_FILES)
def test_the_child_code_uses_no_unguarded_3_11_api(name: str) -> None:
    tree = ast.parse((TRACER / name).read_text())
    guarded: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(
                isinstance(h.type, ast.Name) and h.type.id in ("ImportError", "AttributeError", "NameError")
                for h in node.handlers):
            guarded |= {id(inner) for inner in ast.walk(ast.Module(body=node.body, type_ignores=[]))}
    found = []
    for node in ast.walk(tree):
        if id(node) in guarded:
            continue
        if isinstance(node, ast.Attribute) and node.attr in NEWER_ATTRIBUTES:
            found.append(f"line {node.lineno}: .{node.attr}")
        elif isinstance(node, ast.Name) and node.id in NEWER_NAMES:
            found.append(f"line {node.lineno}: {node.id}")
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            found += [f"line {node.lineno}: import {m}" for m in modules if m.split(".")[0] in NEWER_NAMES]
    assert not found, f"{name} uses Python 3.11+ API unguarded: {found}"


def test_the_interpreter_setting(venv: Path, tmp_path: Path) -> None:
    python = str(venv / "bin" / "python")
    settings, problems = Settings().merged({"interpreter": python})
    assert settings.interpreter == python and problems == []
    kept, problems = settings.merged({"neuraldbg": {"interpreter": str(tmp_path / "missing")}})
    assert kept.interpreter == python
    assert problems == [f"setting interpreter: {str(tmp_path / 'missing')!r} is not an executable file; using {python}"]
    _, problems = Settings().merged({"interpreter": "bin/python"})
    assert problems == ["setting interpreter: 'bin/python' is not an absolute path; using the server's own Python"]
    (tmp_path / "notexec").write_text("")
    _, problems = Settings().merged({"interpreter": str(tmp_path / "notexec")})
    assert problems and "is not an executable file" in problems[0]
    assert Settings(interpreter=python).merged({"interpreter": ""})[0].interpreter == ""  # back to the server's


def test_the_interpreter_is_asked_once_per_path(venv: Path) -> None:
    python = str(venv / "bin" / "python")
    first = interpreters.find(python)
    assert interpreters.find(python) is first  # cached
    assert first.prefix == str(venv) and first.version == sys.version_info[:2]
    assert any(p.startswith(str(venv)) and p.endswith("site-packages") for p in first.sys_path)
    assert os.path.realpath(sysconfig.get_paths()["purelib"]) not in map(os.path.realpath, first.sys_path)


def test_the_command_line_takes_the_projects_interpreter(venv: Path, tmp_path: Path) -> None:
    path = program(tmp_path)
    base = [sys.executable, "-m", "neuraldbg", "trace", f"{path}::f", "--call", "f()", "--format", "json"]
    ok = subprocess.run([*base, "--interpreter", str(venv / "bin" / "python")], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert '"status": "complete"' in ok.stdout and "42" in ok.stdout
    without = subprocess.run(base, capture_output=True, text=True)
    assert without.returncode == 1 and "No module named 'onlyinvenv'" in without.stdout
    missing = subprocess.run([*base, "--interpreter", str(tmp_path / "nope")], capture_output=True, text=True)
    assert missing.returncode == 2 and missing.stderr.strip().startswith("neuraldbg: error: --interpreter")

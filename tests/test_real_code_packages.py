"""Real code: a file inside a package is traced as Python imports it (its
dotted name, its package root on sys.path), so relative and absolute package
imports work, ``__name__`` is the dotted name and a ``__main__`` guard stays
shut; through run_trace on every isolation level this machine has, and
through ``neuraldbg trace pkg/sub/mod.py::f``."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from neuraldbg.tracer import Limits, isolation, run_trace
from neuraldbg.tracer.modules import locate

LIMITS = Limits(wall_seconds=20, cpu_seconds=5)
AVAILABLE = [level for level in isolation.LEVELS if isolation.detect(level).level == level]

# The editor's text of src/pkg/sub/mod.py; the file on disk differs (see project()).
MOD = '''\
from ..util import double
from pkg.util import double as double_again
from . import helper
import otherpkg


def f(x):
    y = double(x) + double_again(x) + helper.one() + otherpkg.TEN
    return y, __name__, __package__, __spec__.name, EDITED

EDITED = "editor"

if __name__ == "__main__":
    print("the __main__ block ran")
    raise SystemExit(3)
'''


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A src-layout project: pkg (with a subpackage whose __init__ imports the
    module from disk, as packages often do) and a sibling package otherpkg."""
    write(tmp_path, {
        "pyproject.toml": '[project]\nname = "pkg"\nversion = "0"\n',
        "src/pkg/__init__.py": "",
        "src/pkg/util.py": "def double(x):\n    return 2 * x\n",
        "src/pkg/sub/__init__.py": "from . import mod\n",
        "src/pkg/sub/helper.py": "def one():\n    return 1\n",
        "src/pkg/sub/mod.py": MOD.replace('EDITED = "editor"', 'EDITED = "disk"'),
        "src/otherpkg/__init__.py": "TEN = 10\n",
        "tests/test_pkg.py": "from pkg.sub.mod import f\n\n\ndef check():\n    return f(1)[0]\n",
    })
    return tmp_path


def returned(trace) -> object:
    assert trace.status == "complete" and trace.error is None, (trace.status, trace.error)
    last = trace.frames[-1]
    assert last.event == "return" and last.depth == 0
    return ast.literal_eval(last.value)


@pytest.mark.parametrize("level", AVAILABLE)
def test_a_package_module_runs_with_its_relative_and_absolute_imports(project: Path, level: str) -> None:
    path = project / "src/pkg/sub/mod.py"
    trace = run_trace(MOD, "f(3)", path=str(path), limits=LIMITS, isolation=level)
    # double twice, helper.one, otherpkg.TEN; the editor's text, not the file on disk
    assert returned(trace) == (6 + 6 + 1 + 10, "pkg.sub.mod", "pkg.sub", "pkg.sub.mod", "editor")
    assert "__main__ block ran" not in trace.stdout
    assert {frame.function for frame in trace.frames} == {"f"}  # only the traced module's own frames


def test_a_package_init_is_the_package(tmp_path: Path) -> None:
    write(tmp_path, {"app/__init__.py": "", "app/util.py": "def inc(x):\n    return x + 1\n"})
    source = ("from .util import inc\n\n\ndef g(x):\n"
              "    return inc(x), __name__, __package__, list(__path__) == [__spec__.submodule_search_locations[0]]\n")
    path = tmp_path / "app/__init__.py"
    path.write_text(source)
    assert returned(run_trace(source, "g(1)", path=str(path), limits=LIMITS)) == (2, "app", "app", True)


def test_a_test_folder_imports_the_src_packages(project: Path) -> None:
    path = project / "tests/test_pkg.py"
    trace = run_trace(path.read_text(), "check()", path=str(path), limits=LIMITS)
    assert returned(trace) == 2 + 2 + 1 + 10


def test_pyproject_package_dir_is_an_import_root(tmp_path: Path) -> None:
    write(tmp_path, {
        "pyproject.toml": '[project]\nname = "lp"\n\n[tool.setuptools]\npackage-dir = {"" = "lib"}\n',
        "lib/lpkg/__init__.py": "NAME = 'lpkg'\n",
        "scripts/run.py": "import lpkg\n\n\ndef name():\n    return lpkg.NAME, __name__\n",
    })
    path = tmp_path / "scripts/run.py"
    assert returned(run_trace(path.read_text(), "name()", path=str(path), limits=LIMITS)) == ("lpkg", "run")


def test_a_top_level_script_keeps_its_folder_and_its_main_guard_shut(tmp_path: Path) -> None:
    write(tmp_path, {"helpers.py": "K = 5\n"})
    source = "import helpers\n\n\ndef h():\n    return helpers.K, __name__\n\n\nif __name__ == '__main__':\n    print('ran')\n"
    for name, expected in (("tool.py", "tool"), ("__main__.py", "program"), ("my-script.py", "program")):
        path = tmp_path / name
        path.write_text(source)
        trace = run_trace(source, "h()", path=str(path), limits=LIMITS)
        assert returned(trace) == (5, expected) and "ran" not in trace.stdout, name


def test_locate_names_and_roots(project: Path) -> None:
    src = str(project / "src")
    assert locate(str(project / "src/pkg/sub/mod.py")).name == "pkg.sub.mod"
    assert locate(str(project / "src/pkg/sub/mod.py")).roots == (src, str(project))
    assert locate(str(project / "src/pkg/__init__.py")).name == "pkg"
    assert locate(str(project / "tests/test_pkg.py")).roots == (str(project / "tests"), str(project), src)
    assert locate("<string>").name == "program" and locate("<string>").roots == ()


def test_cli_traces_a_module_inside_a_package(project: Path) -> None:
    (project / "src/pkg/sub/mod.py").write_text(MOD)
    done = subprocess.run([sys.executable, "-m", "neuraldbg", "trace", "src/pkg/sub/mod.py::f", "--call", "f(2)",
                           "--format", "json"], cwd=project, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["error"] is None, data["error"]
    assert ast.literal_eval(data["frames"][-1]["value"]) == (4 + 4 + 1 + 10, "pkg.sub.mod", "pkg.sub", "pkg.sub.mod",
                                                            "editor")

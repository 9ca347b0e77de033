"""``neuraldbg fill``: holes filled from the terminal (search on exec, the
model path on the tiny CWM), shown as a diff, written only when they pass."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def ndbg(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "neuraldbg", *args], cwd=cwd, capture_output=True, text=True, timeout=240)


def test_exec_fill_shows_a_diff_and_writes_only_with_write(tmp_path: Path) -> None:
    prog = tmp_path / "hole.py"
    shutil.copy(ROOT / "examples" / "hole.py", prog)
    before = prog.read_text()
    shown = ndbg("fill", f"{prog}::running_max")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0] == "Fill hole: x (found by search) ✓ passes running_max([3, 1, 4, 1, 5]) == [3, 3, 4, 4, 5]"
    assert "-            best = ??" in lines and "+            best = x" in lines
    assert prog.read_text() == before  # without --write nothing changes

    written = ndbg("fill", f"{prog}::running_max", "--write")
    assert written.returncode == 0, written.stderr
    assert prog.read_text() == before.replace("best = ??", "best = x")
    traced = ndbg("trace", f"{prog}::running_max", "--format", "json")
    assert json.loads(traced.stdout)["frames"][-1]["value"] == "[3, 3, 4, 4, 5]"


def test_a_hole_no_candidate_can_fill_is_exit_1_and_the_file_is_untouched(tmp_path: Path) -> None:
    prog = tmp_path / "odd.py"
    # 3n + 1 is beyond the search's candidates (scope names, doctest literals, n +/- 1, ...)
    prog.write_text('def magic(n):\n    """\n    >>> magic(2)\n    7\n    >>> magic(3)\n    10\n    """\n    return ??\n')
    before = prog.read_text()
    out = ndbg("fill", f"{prog}::magic", "--write")
    assert out.returncode == 1
    err = out.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("neuraldbg: no fill for magic: no candidate made magic(2) give 7")
    assert prog.read_text() == before


def test_bad_input_is_one_line_exit_2(tmp_path: Path) -> None:
    no_hole = ndbg("fill", "examples/strawberry.py::count_letter")
    assert no_hole.returncode == 2
    assert no_hole.stderr.strip() == "neuraldbg: error: examples/strawberry.py: count_letter has no ?? hole to fill"
    missing = ndbg("fill", "examples/hole.py::nope")
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1
    assert "nope" in missing.stderr


def test_model_fill_on_the_tiny_cwm_goes_through_the_chat_path(tiny_cwm_dir: Path, tmp_path: Path) -> None:
    """A random model writes noise: the answer is rejected with one clear line
    (or, if the noise happens to be a valid fill, it is shown and checked).
    This stays on the random tiny CWM, not the oracle-forced one: ``fill``
    on a model backend asks CWM in chat mode, which is not a trace prompt (the
    oracle has no answer there), and a program with a ?? hole has no real run
    to force anyway."""
    prog = tmp_path / "hole.py"
    shutil.copy(ROOT / "examples" / "hole.py", prog)
    before = prog.read_text()
    out = ndbg("fill", f"{prog}::running_max", "--backend", "local", "--model", str(tiny_cwm_dir), "--max-tokens", "64",
               "--write")
    if out.returncode == 1 and out.stderr.strip().startswith("neuraldbg: no fill for running_max:"):
        assert any(why in out.stderr for why in ("the model's", "the model did not finish reasoning"))
        assert len(out.stderr.strip().splitlines()) == 1
        assert prog.read_text() == before
    else:
        assert out.stdout.startswith("Fill hole: ") and "(model)" in out.stdout.splitlines()[0], out.stdout + out.stderr

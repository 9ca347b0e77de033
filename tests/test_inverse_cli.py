"""``neuraldbg inputs``: exit 0 found / 1 none / 2 bad input (one line), the
table and the JSON, through a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PROGRAM = '''\
def door(pin: int, phrase: str):
    if pin == 4711 and phrase == "let me in":
        return "open"
    return "shut"


def fixed():
    return 0


def parse(text):
    if not text.isdigit():
        raise TypeError("digits only")
    return int(text)
'''


def ndbg(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "neuraldbg", "inputs", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


def _prog(tmp_path: Path) -> str:
    path = tmp_path / "prog.py"
    path.write_text(PROGRAM)
    return str(path)


def test_found_is_exit_0_with_checked_call_strings(tmp_path: Path) -> None:
    prog = _prog(tmp_path)
    out = ndbg(f"{prog}::door", "--reach", "3")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["input", "verdict", "outcome"]
    assert lines[2].split("  ")[0] == "door(4711, 'let me in')" and "checked" in lines[2]
    raised = ndbg(f"{prog}::parse", "--raises", "TypeError", "--format", "json")
    assert raised.returncode == 0, raised.stderr
    data = json.loads(raised.stdout)
    assert data["found"] and all(f["checked"] for f in data["found"])
    assert data["found"][0]["outcome"].startswith("raises TypeError: digits only")


def test_none_found_is_exit_1_with_what_was_tried_and_the_closest(tmp_path: Path) -> None:
    out = ndbg(f"{_prog(tmp_path)}::door", "--returns", "'ajar'", "--budget", "200")
    assert out.returncode == 1
    err = out.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("neuraldbg: no input found that would return 'ajar': tried 200 inputs")
    assert "the closest reached line 3" in err[0]


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    prog = _prog(tmp_path)
    cases = {
        ("door", "--reach", "9"): "line 9 is outside door (lines 2-4)",
        ("door", "--when", "3", "pin =="): "the expression 'pin ==' does not parse",
        ("door", "--returns", "1 +"): "the expression '1 +' does not parse",
        ("fixed", "--reach", "8"): "fixed takes no parameters",
        ("door", "--reach", "3", "--budget", "0"): "--budget must be at least 1, got 0",
    }
    for (func, *rest), message in cases.items():
        out = ndbg(f"{prog}::{func}", *rest)
        assert out.returncode == 2, (rest, out.stderr)
        err = out.stderr.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("neuraldbg: error: ") and message in err[0], err

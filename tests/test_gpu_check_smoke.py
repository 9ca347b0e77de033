"""benchmarks/gpu_check.py on the CPU (--smoke): the GPU check's own code (the
random CWM built as gpu_decode builds it, the oracle-forced decode with and
without speculation, the 1- vs 9-token forwards, LocalBackend.score, the long
chunked prefill against doctor's estimate) runs end to end on a tiny CWM, so
that a session lent a GPU spends its minutes measuring, not debugging; the
time guard never leaves a figure out silently; and what the script imports
is there on the device machine (its image, or the wheels the script carries)."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"
FIGURES = (
    "decode_tokens_per_s_k0", "decode_tokens_per_s_k8", "speculation_speedup", "tokens_per_forward_k8",
    "oracle_ms_per_token_k0", "verify8_over_1", "scoring_ms_2k", "scoring_speedup_vs_generate", "peak_gib",
    "doctor_estimate_gib", "peak_over_estimate", "kv_held_over_doctor",
)
# Project dependencies the device machine's image does not have (KINDS.md's package list) and the script does not carry.
NOT_ON_DEVICE = {"pygls", "lsprotocol", "httpx_sse", "starlette", "uvicorn", "bitsandbytes", "jedi"}
FIGURE_LINE = re.compile(r"^FIGURE gpu\.(\S+) \| (\S+) \| (.*)$", flags=re.M)


@pytest.fixture(scope="module")
def smoke() -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-X", "importtime", str(SCRIPT), "--smoke"], cwd=ROOT, capture_output=True,
                          text=True, timeout=240)


@pytest.fixture(scope="module")
def gpu_check():
    sys.path.insert(0, str(SCRIPT.parent))  # as when run: its neighbours (gpu_decode, _oracle_session) import
    try:
        return importlib.import_module(SCRIPT.stem)
    finally:
        sys.path.remove(str(SCRIPT.parent))


def test_smoke_run_prints_every_figure_with_a_sane_value(smoke) -> None:
    assert smoke.returncode == 0, smoke.stdout[-3000:] + smoke.stderr[-3000:]
    values = {name: value for name, value, _ in FIGURE_LINE.findall(smoke.stdout)}
    assert set(values) == set(FIGURES)
    got = {name: float(values[name]) for name in FIGURES}  # a "skipped" or "failed" would not parse
    assert all(got[name] > 0 for name in FIGURES), got
    # every token forced by the oracle, and speculation accepted drafts: more than one token per forward
    assert smoke.stdout.count("real run kept") == 2
    assert got["tokens_per_forward_k8"] > 1
    assert got["peak_over_estimate"] == pytest.approx(got["peak_gib"] / got["doctor_estimate_gib"], rel=1e-2)
    # the KV storage the backend really held after the chunked prefill is what kv_budget says one context takes
    assert got["kv_held_over_doctor"] == pytest.approx(1.0, abs=1e-3)


def test_smoke_run_imports_nothing_the_device_machine_lacks(smoke, gpu_check) -> None:
    imported = {m.group(1).split(".")[0] for m in re.finditer(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)", smoke.stderr,
                                                              flags=re.M)}
    assert "tree_sitter" in imported and "transformers" in imported  # why the wheels travel
    assert not imported & NOT_ON_DEVICE
    # the carried wheels are the project's own pins
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = {*deps["dependencies"], *deps["optional-dependencies"]["local"]}
    assert set(gpu_check.WHEELS) <= pins


def test_a_part_that_does_not_fit_the_budget_is_skipped_out_loud(gpu_check, capsys) -> None:
    report = gpu_check.Report()
    check = gpu_check.Check(model=None, config=None, hf_tok=None, decode=None, scoring=None, s=gpu_check.SMOKE,
                            budget=gpu_check.Budget(0.0), report=report)
    check.run()  # nothing runs: a model of None would fail
    lines = FIGURE_LINE.findall(capsys.readouterr().out)
    assert {name for name, _, _ in lines} == set(FIGURES)
    assert all(value == "skipped" and why.startswith("for time") for _, value, why in lines)
    assert len(report.problems) == 4  # one per part: the exit status says so


def test_a_failing_part_says_so_and_the_next_still_runs(gpu_check, capsys) -> None:
    report = gpu_check.Report()
    budget = gpu_check.Budget(60.0)
    ran: list[str] = []

    def boom() -> None:
        report.figure("a", 1.5, "s")  # measured before the failure: kept, not overwritten
        raise RuntimeError("CUDA out of memory\nmore")

    gpu_check.run_part(gpu_check.Part(("a", "b"), 0.0, boom), budget, report)
    gpu_check.run_part(gpu_check.Part(("c",), 0.0, lambda: ran.append("c")), budget, report)
    lines = FIGURE_LINE.findall(capsys.readouterr().out)
    assert lines == [("a", "1.5", "s"), ("b", "failed", "RuntimeError: CUDA out of memory")]
    assert ran == ["c"] and len(report.problems) == 1

"""The model benchmarks in quick mode, on the oracle-forced CWM: each must
exit 0 and print figures that show a model wrote the frames they measure
(the old ones silently measured a random model that never finished a
frame). Run as the benchmark runner runs them: subprocesses from the
repository root."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIGURE = re.compile(r"^FIGURE\s+(\S+)\s*\|\s*(.*?)\s*\|", re.M)


def figures(script: str, *args: str, timeout: float = 280) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, f"benchmarks/{script}", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-2000:]
    return {name: float(value) for name, value in FIGURE.findall(proc.stdout)}


@pytest.mark.slow
def test_kv_reuse_session_is_written_by_the_model() -> None:
    got = figures("bench_kv_reuse.py", "--quick")
    assert got["kv_reuse.steps_asked"] == 16  # the QUICK session's moves
    assert got["kv_reuse.steps_predicted"] == got["kv_reuse.frames_needed"] > got["kv_reuse.steps_asked"]
    assert got["kv_reuse.prefill_ratio"] > 10
    assert got["kv_reuse.remote_prefill_ratio"] > 10
    assert got["kv_reuse.wall_ratio_tiny"] > 0


@pytest.mark.slow
def test_speculation_verifies_several_tokens_per_forward() -> None:
    got = figures("bench_speculation.py", "--quick")
    assert got["speculation.tokens_per_forward"] > 1.5
    assert 1 < got["speculation.tokens_per_forward_all"] <= got["speculation.tokens_per_forward"]
    assert got["speculation.wall_gain_tiny"] > 0


@pytest.mark.slow
def test_dap_model_steps_each_write_one_frame() -> None:
    got = figures("bench_dap_step.py", "--quick")
    assert got["dap_step.model_frame_tokens"] > 5  # a real frame, not a capped stream of noise
    assert got["dap_step.model_frame_p50"] > got["dap_step.predicted_p50"] > 0


@pytest.mark.slow
def test_first_value_comes_from_a_predicted_frame() -> None:
    got = figures("bench_first_value.py", "--quick")
    assert got["first_value.cold"] > 0 and got["first_value.warm"] > 0


def test_a_request_that_does_not_finish_its_frame_fails_the_check() -> None:
    """The check the benchmarks exit on: a request cut mid-frame (what the
    random model's token cap gave) is reported, a complete frame is not."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from _oracle_session import CheckedBackend, check_log

    from neuraldbg.backends.base import Sampling
    from neuraldbg.trace.cwm_encode import encode_frame
    from neuraldbg.trace.cwm_tokens import FRAME_SEP
    from neuraldbg.trace.frames import Frame
    from neuraldbg.trace.tokenizer import TextTokenizer

    tok = TextTokenizer()
    frame = encode_frame(tok, Frame("line", 2, "f", 0, {"x": "1"}, None, "y = x"), None)
    assert frame[-1] == FRAME_SEP

    class Canned:
        tokenizer = tok

        def __init__(self, out: list[int]) -> None:
            self.out = out

        def generate(self, prompt, *, stop_ids, sampling, cancel=None):
            yield from self.out

    for out, bad in ((frame, 0), (frame[:-3], 1)):
        checked = CheckedBackend(Canned(out))
        list(checked.generate([1, FRAME_SEP], stop_ids=[FRAME_SEP], sampling=Sampling()))
        assert (checked.log.complete_frames, len(check_log(checked.log, "t"))) == (1 - bad, bad)

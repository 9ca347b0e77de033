"""Every CruxEval sample: trace f(input) with the real tracer, encode the
trace as CWM ids with the tiny CWM-layout tokenizer, decode it back, and get
the same frames (in what CWM can express)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from codec_support import functions_of

from neuraldbg.backends.hf_tokenizer import HFTokenizerAdapter
from neuraldbg.trace.cwm_decode import cwm_view, decode_trace
from neuraldbg.trace.cwm_encode import encode_trace
from neuraldbg.trace.cwm_prompt import mark_entry, trace_prompt_ids
from neuraldbg.trace.cwm_tokens import FRAME_SEP, SPECIAL_BASE

DATA = Path(os.environ.get("NEURALDBG_CRUXEVAL", Path(__file__).resolve().parents[2] / "shared/data/cruxeval.jsonl"))
EXPECTED_SAMPLES = 800


@pytest.mark.slow
def test_cruxeval_round_trip(tiny_tokenizer, cruxeval_samples, cruxeval_traces) -> None:
    samples, traces = cruxeval_samples, cruxeval_traces  # traced once per session (tests/conftest.py)
    assert len(samples) == EXPECTED_SAMPLES
    tok = HFTokenizerAdapter(tiny_tokenizer)
    failures: list[str] = []
    frames_checked = 0
    for sample, trace in zip(samples, traces):
        sid = sample["id"]
        if trace.status != "complete" or not trace.frames:
            failures.append(f"{sid}: tracer gave {trace.status}: {trace.error}")
            continue
        fns = functions_of(sample["code"])
        entry = next(fn for fn in fns if fn.qualname == "f")
        source = mark_entry(sample["code"], entry.def_line)
        prompt = trace_prompt_ids(tok, source)
        if prompt.count(FRAME_SEP) != 1 or any(i >= SPECIAL_BASE for i in prompt[2:-1]):
            failures.append(f"{sid}: special id in the prompt's source")
        ids = encode_trace(tok, trace)
        decoded = decode_trace(tok, ids, source, fns)
        frames_checked += len(decoded)
        problems = [f.problem for f in decoded if f.problem]
        if problems:
            failures.append(f"{sid}: flagged: {problems[0]}")
            continue
        got, want = cwm_view(decoded), cwm_view(trace.frames)
        if got != want:
            first = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
            failures.append(f"{sid}: frame {first}: got {got[first:first + 1]} want {want[first:first + 1]}")
    print(f"CruxEval round trip: {len(samples)} samples, {frames_checked} frames, {len(failures)} failures")
    assert not failures, "\n".join(failures[:20])

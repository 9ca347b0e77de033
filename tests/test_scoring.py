"""One-prefill scoring of a real run: the local backend's teacher-forced
pass, and what it says about a trace (agreement, first divergence, where)."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from model_support import LOOP
from neuraldbg.backends.base import BackendError
from neuraldbg.backends.local import LocalBackend
from neuraldbg.simulation.scoring import score_trace
from neuraldbg.source.index import index_text
from neuraldbg.trace.frames import Trace
from neuraldbg.tracer import run_trace

BOS, CONTEXT_START, FRAME_SEP = 128000, 128107, 128100


def test_scores_equal_the_logits_of_separate_forwards(tiny_cwm_dir) -> None:
    backend = LocalBackend.load(tiny_cwm_dir)
    ids = [BOS, CONTEXT_START, *backend.tokenizer.encode(LOOP), FRAME_SEP, *backend.tokenizer.encode('{"xs": "[1]"}')]
    start = 10
    scores = backend.score(ids, start=start)
    assert [s.token for s in scores] == ids[start:]
    model = backend.model
    with torch.inference_mode():
        logits = model(input_ids=torch.tensor([ids])).logits[0].float()
    logp = torch.log_softmax(logits, dim=-1)
    for s, pos in zip(scores, range(start - 1, len(ids) - 1)):
        assert s.top == int(logp[pos].argmax())
        assert math.isclose(s.logprob, float(logp[pos, s.token]), abs_tol=2e-2)
    # The pass left its context in the pool: the same prefix is not prefilled again.
    before = backend.stats.prefilled_tokens
    backend.score(ids, start=len(ids) - 2)
    assert backend.stats.prefilled_tokens - before <= 2


def test_a_sequence_longer_than_the_context_is_refused_in_one_line(tiny_cwm_dir) -> None:
    backend = LocalBackend.load(tiny_cwm_dir)
    with pytest.raises(BackendError, match="the context holds") as err:
        backend.score([BOS] * (backend.context_tokens + 1), start=1)
    assert "\n" not in str(err.value)
    with pytest.raises(BackendError, match="outside"):
        backend.score([BOS, BOS], start=0)


def _program():
    index = index_text(LOOP)
    return index.function("count"), run_trace(LOOP, "count([1, 2, 3, 4])", function="count")


def test_the_real_run_agrees_everywhere_with_the_oracle(oracle_cwm) -> None:
    backend, _ = oracle_cwm
    fn, truth = _program()
    scored = score_trace(backend, backend.tokenizer, source=LOOP, function=fn, trace=truth)
    assert [f.index for f in scored.frames] == list(range(1, len(truth.frames)))  # the call frame is the input
    assert scored.first_divergence is None and scored.frame_accuracy == 1.0
    assert scored.ends is True
    assert all(f.probability > 0.99 for f in scored.frames)


def test_a_wrong_value_is_the_first_divergence_and_names_its_local(oracle_cwm) -> None:
    backend, _ = oracle_cwm
    fn, truth = _program()
    at = next(i for i, f in enumerate(truth.frames) if f.event == "line" and f.locals.get("total") == "1")
    frames = list(truth.frames)
    frames[at] = replace(frames[at], locals={**frames[at].locals, "total": "7"})
    wrong = Trace(**{**truth.__dict__, "frames": frames})
    scored = score_trace(backend, backend.tokenizer, source=LOOP, function=fn, trace=wrong)
    assert scored.first_divergence == at
    assert scored.agreeing_prefix == at
    frame = scored.frames[at - 1]  # scores start at frame 1
    assert frame.index == at and not frame.agrees
    where = frame.disagreement
    assert where.part == "locals" and where.name == "total"
    # The model expected what the real run shows there: the value, or ".." when it is unchanged.
    shown = ".." if truth.frames[at - 1].locals.get("total") == "1" else "1"
    assert where.expected.strip('"')[:1] == shown[:1] and where.probability < 1e-3
    assert frame.probability < 1e-3

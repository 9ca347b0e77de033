"""The KV context pool picks a context that can actually serve a prompt.

A tiny random CWM (sliding window 24) with a small rollback margin plays CWM
(window 8,192, margin 2,048) on a trace longer than window + margin: the
context sharing the longest prefix has trimmed the past a deep crop needs,
and another pooled context (an exact prefix, or a shorter prefix whose crop
is possible) must serve instead of a prefill from scratch. Every result is
checked against an uncached run."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
import torch

from neuraldbg.backends.base import Sampling
from neuraldbg.backends.kv_cache import ContextPool, can_crop, common_prefix
from neuraldbg.backends.local import LocalBackend
from neuraldbg.testing.tiny_model import TINY_SLIDING_WINDOW

BOS, CONTEXT_START, FRAME_SEP, LINE_SEP = 128000, 128107, 128100, 128104
ROLLBACK = 8  # a margin small next to the trace, as 2,048 is next to a 10k-token CWM trace
SOURCE = "def f(xs):  # << START_OF_TRACE\n    total = 0\n    for x in xs:\n        total += x\n    return total\n"


@pytest.fixture(scope="module")
def backend(tiny_cwm_dir) -> LocalBackend:
    return LocalBackend.load(tiny_cwm_dir, device_map="auto")


def pooled(backend: LocalBackend, **kwargs: Any) -> LocalBackend:
    """A backend over the same weights with an empty KV pool."""
    return LocalBackend(backend.model, backend.hf_tokenizer, name="pooled", context_tokens=backend.context_tokens,
                        **kwargs)


def long_trace(backend: LocalBackend) -> tuple[list[int], list[int]]:
    """Trace-like ids (source, then line frames) and the frame boundaries."""
    ids = [BOS, CONTEXT_START, *backend.tokenizer.encode(SOURCE), FRAME_SEP]
    ends = []
    for i in range(8):
        ids += [LINE_SEP, *backend.tokenizer.encode(f'{{"total": "{i * 7}"}}'), FRAME_SEP]
        ends.append(len(ids))
    assert len(ids) > 3 * (TINY_SLIDING_WINDOW + ROLLBACK)
    return ids, ends


def test_a_rerun_deep_in_the_past_extends_the_exact_prefix_context(backend) -> None:
    """Re-running a long trace from early on: each step's prompt is a prefix
    of the first run's context (which cannot be cropped that far back) and
    extends the previous step's context."""
    step = Sampling(temperature=0.0, max_tokens=1)  # the context then holds exactly the prompt
    warm = pooled(backend, rollback_tokens=ROLLBACK)
    trace, ends = long_trace(backend)
    list(warm.generate(trace, stop_ids=[], sampling=Sampling(temperature=0.0, max_tokens=8)))
    cuts = [e for e in ends if e < len(trace) - TINY_SLIDING_WINDOW - ROLLBACK]
    assert len(cuts) >= 3 and cuts[0] > TINY_SLIDING_WINDOW
    for cut in cuts:
        expected = list(pooled(backend).generate(trace[:cut], stop_ids=[], sampling=step))
        assert list(warm.generate(trace[:cut], stop_ids=[], sampling=step)) == expected
    s = warm.cache_stats
    # the first re-run step has nothing to reuse; every later one extends the one before
    assert (s.misses, s.rebuilds, s.hits, s.detours, s.forks) == (1, 1, len(cuts) - 1, len(cuts) - 1, 0)
    assert warm.stats.prefilled_tokens == len(trace) + cuts[-1]


def _forward(model: Any, cache: Any, ids: Sequence[int]) -> torch.Tensor:
    with torch.inference_mode():
        out = model(input_ids=torch.tensor([list(ids)]), past_key_values=cache, use_cache=cache is not None,
                    logits_to_keep=1)
    return out.logits[0, -1]


class PoolRunner:
    """Prompts through a real :class:`ContextPool` and model forwards, as the
    local backend runs them; counts the caches the pool builds."""

    def __init__(self, model: Any) -> None:
        from transformers import DynamicCache

        self.model = model
        self.caches_built = 0

        def new_cache() -> Any:
            self.caches_built += 1
            return DynamicCache(config=model.config)

        self.pool = ContextPool(new_cache, rollback_tokens=ROLLBACK)

    def logits(self, prompt: list[int]) -> tuple[torch.Tensor, int]:
        ctx, reused = self.pool.acquire(prompt)
        logits = _forward(self.model, ctx.cache, prompt[reused:])
        self.pool.extended(ctx, prompt[reused:])
        self.pool.release(ctx)
        return logits, reused


def test_a_shorter_prefix_that_can_be_cropped_serves_when_the_longest_cannot(backend) -> None:
    runner = PoolRunner(backend.model)
    trace, ends = long_trace(backend)
    runner.logits(trace)  # the first run: its sliding layers keep only window - 1 + ROLLBACK positions
    edited = trace[: ends[1]] + [LINE_SEP, *backend.tokenizer.encode('{"total": "99"}')]  # an edit, early on
    runner.logits(edited)  # too deep to crop the first run: from scratch
    assert runner.pool.stats.rebuilds == 1
    # back to the first run's frames: it shares the most but has dropped their past;
    # the edited context shares up to the edit and can be cropped there
    prompt = trace[: ends[3]]
    first_run = next(c for c in runner.pool._contexts if c.tokens == trace)
    assert not can_crop(first_run.cache, len(prompt) - 1) and can_crop(first_run.cache, len(trace) - 1)
    built = runner.caches_built
    logits, reused = runner.logits(prompt)
    assert reused == common_prefix(edited, prompt) > ends[1]  # the edit changed a value inside frame 2
    s = runner.pool.stats
    assert (s.rebuilds, s.forks, s.detours) == (1, 1, 1)
    assert runner.caches_built == built + 1  # one cropped copy; none built for the first run's context
    torch.testing.assert_close(logits, _forward(backend.model, None, prompt), rtol=1e-4, atol=1e-4)


def test_when_no_context_can_serve_it_prefills_from_scratch_and_stays_correct(backend) -> None:
    runner = PoolRunner(backend.model)
    trace, ends = long_trace(backend)
    runner.logits(trace)
    built = runner.caches_built
    logits, reused = runner.logits(trace[: ends[2]])
    assert reused == 0 and runner.pool.stats.rebuilds == 1
    assert runner.caches_built == built + 1  # the fresh cache only: no copy attempted
    torch.testing.assert_close(logits, _forward(backend.model, None, trace[: ends[2]]), rtol=1e-4, atol=1e-4)

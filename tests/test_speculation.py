"""Prompt-lookup speculative decoding in the local backend's decode loop:
greedy output identical to plain decoding, the KV of rejected drafts rolled
back (later requests reusing the context stay exact), and fewer forward passes
per token on traces (the oracle-forced CWM writes the real run)."""

from __future__ import annotations

from model_support import LOOP, model_sim
from neuraldbg.backends.base import Sampling
from neuraldbg.backends.local import LocalBackend
from neuraldbg.backends.oracle import OracleLogitsProcessor, TraceOracle
from neuraldbg.trace.cwm_decode import cwm_view
from neuraldbg.tracer import run_trace

BOS, CONTEXT_START, FRAME_SEP, CALL_SEP = 128000, 128107, 128100, 128103
# Repetitive on purpose: prompt lookup has something to copy, and the random model tends to loop.
SOURCE = "def f(xs):  # << START_OF_TRACE\n" + "    total = total + 1\n" * 12 + "    return total\n"



def twin(backend: LocalBackend, *, k: int, processor=None) -> LocalBackend:
    return LocalBackend(backend.model, backend.hf_tokenizer, name=f"k={k}", context_tokens=backend.context_tokens,
                        speculative_tokens=k, logits_processor=processor)


def test_greedy_ids_are_identical_with_and_without_speculation(tiny_cwm_dir) -> None:
    base = LocalBackend.load(tiny_cwm_dir)
    prompt = [BOS, CONTEXT_START, *base.tokenizer.encode(SOURCE), FRAME_SEP, CALL_SEP]
    greedy = Sampling(temperature=0.0, max_tokens=120)
    plain = twin(base, k=0)
    fast = twin(base, k=8)
    expected = list(plain.generate(prompt, stop_ids=[], sampling=greedy))
    got = list(fast.generate(prompt, stop_ids=[], sampling=greedy))
    assert got == expected
    assert fast.stats.draft_tokens > 0  # drafts were verified, not skipped
    assert plain.stats.decode_forwards == len(expected) - 1
    # After the request, a prompt that diverges inside the generated part must see a rolled-back, exact cache.
    follow = prompt + expected[:50] + [FRAME_SEP]
    assert list(fast.generate(follow, stop_ids=[], sampling=greedy)) == list(
        twin(base, k=0).generate(follow, stop_ids=[], sampling=greedy))
    assert fast.stats.reused_tokens > len(prompt)


def test_stop_ids_and_max_tokens_hold_inside_an_accepted_draft(tiny_cwm_dir) -> None:
    base = LocalBackend.load(tiny_cwm_dir)
    prompt = [BOS, CONTEXT_START, *base.tokenizer.encode(SOURCE), FRAME_SEP, CALL_SEP]
    free = list(twin(base, k=0).generate(prompt, stop_ids=[], sampling=Sampling(max_tokens=60)))
    for cap in (1, 7, 33):
        assert list(twin(base, k=8).generate(prompt, stop_ids=[], sampling=Sampling(max_tokens=cap))) == free[:cap]
    stop = free[20]
    first = free.index(stop)
    assert list(twin(base, k=8).generate(prompt, stop_ids=[stop], sampling=Sampling(max_tokens=60))) == free[: first + 1]


def test_on_a_trace_speculation_writes_the_same_frames_in_fewer_forwards(tiny_cwm_dir) -> None:
    base = LocalBackend.load(tiny_cwm_dir)
    runs = {}
    for k in (0, 8):
        backend = twin(base, k=k, processor=OracleLogitsProcessor(TraceOracle(base.tokenizer)))
        got = model_sim(backend, LOOP, "count", "count([1, 2, 3, 4])").run_to_end()
        runs[k] = (got, backend.stats)
    truth = run_trace(LOOP, "count([1, 2, 3, 4])", function="count")
    for got, _ in runs.values():
        assert got.status == "complete" and cwm_view(got.frames) == cwm_view(truth.frames)
    plain, fast = runs[0][1], runs[8][1]
    assert plain.generated_tokens == fast.generated_tokens
    assert fast.accepted_tokens > 0
    assert fast.decode_forwards < plain.decode_forwards

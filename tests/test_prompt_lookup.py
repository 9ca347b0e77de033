"""Prompt-lookup drafts: the rule on hand-made sequences, the incremental
index against the scan and against a brute-force reading of the rule."""

from __future__ import annotations

import random

import pytest

from neuraldbg.backends.prompt_lookup import NgramIndex, draft, perfect_model_forwards


def reference_draft(ids: list[int], k: int, max_ngram: int = 4, min_ngram: int = 1) -> list[int]:
    """The module docstring's rule, written as literally as possible."""
    size = len(ids)
    for n in range(max_ngram, min_ngram - 1, -1):
        if n >= size:
            continue
        starts = [j for j in range(size - n) if ids[j : j + n] == ids[size - n :]]
        if starts:
            j = max(starts)
            return ids[j + n : j + n + k]
    return []


def test_longest_ngram_wins_over_a_more_recent_shorter_one() -> None:
    #      0  1  2  3  4  5  6  7  8  9
    ids = [1, 2, 3, 7, 8, 9, 3, 5, 2, 3]
    # suffix (2, 3) occurs at 1 and is followed by 3 7 8; (3,) alone is more recent (at 6, then 5)
    assert draft(ids, 3) == [7, 8, 9]
    assert draft(ids, 3, max_ngram=1) == [5, 2, 3]


def test_most_recent_occurrence_of_the_same_length() -> None:
    ids = [4, 1, 10, 4, 1, 20, 4, 1]
    assert draft(ids, 1) == [20]
    assert draft(ids, 5) == [20, 4, 1]  # runs into the end: fewer than k


def test_occurrence_may_overlap_the_suffix() -> None:
    assert draft([5, 5, 5], 4) == [5]  # (5, 5) at 0 is followed by the last 5
    assert draft([7, 7], 3) == [7]


def test_no_match_and_degenerate_inputs() -> None:
    assert draft([1, 2, 3, 4], 8) == []
    assert draft([], 8) == []
    assert draft([3], 8) == []
    assert draft([1, 2, 1], 0) == []
    assert draft((1, 2, 1), 2) == [2, 1]  # any sequence, not only lists


def test_min_ngram_refuses_short_matches() -> None:
    ids = [1, 9, 2, 9]
    assert draft(ids, 2) == [2, 9]
    assert draft(ids, 2, min_ngram=2) == []


def test_bad_arguments() -> None:
    for kwargs in ({"k": -1}, {"k": 2, "max_ngram": 0, "min_ngram": 0}, {"k": 2, "max_ngram": 2, "min_ngram": 3}):
        with pytest.raises(ValueError):
            draft([1, 2, 1], **kwargs)
    with pytest.raises(ValueError):
        NgramIndex(max_ngram=1, min_ngram=2)
    with pytest.raises(ValueError):
        NgramIndex([1, 2]).draft(-1)


@pytest.mark.parametrize(("max_ngram", "min_ngram"), [(4, 1), (3, 2), (1, 1), (6, 3)])
def test_scan_and_index_follow_the_rule_at_every_length(max_ngram: int, min_ngram: int) -> None:
    rng = random.Random(max_ngram * 10 + min_ngram)
    for trial in range(60):
        alphabet = rng.choice([2, 3, 5, 12])  # small alphabets: many long, overlapping matches
        ids = [rng.randrange(alphabet) for _ in range(rng.randrange(1, 80))]
        index = NgramIndex(max_ngram=max_ngram, min_ngram=min_ngram)
        for size in range(len(ids) + 1):
            prefix = ids[:size]
            k = rng.randrange(0, 10)
            want = reference_draft(prefix, k, max_ngram, min_ngram)
            assert draft(prefix, k, max_ngram, min_ngram) == want, (trial, prefix, k)
            assert index.draft(k) == want, (trial, prefix, k)
            if size < len(ids):
                index.append(ids[size])
        assert list(index.ids) == ids and len(index) == len(ids)


def test_index_built_at_once_equals_index_built_token_by_token() -> None:
    ids = [1, 2, 3, 1, 2, 4, 1, 2, 3, 1, 2]
    grown = NgramIndex()
    grown.extend(ids[:5])
    grown.extend(ids[5:])
    # (2, 3, 1, 2) at 1 is the longest match: what followed it, up to the end
    assert NgramIndex(ids).draft(8) == grown.draft(8) == [4, 1, 2, 3, 1, 2]


def test_drafts_a_repeated_trace_frame() -> None:
    # a loop body's frames repeat: after the first iteration the draft copies the next frame's opening tokens
    frame = [128104, 90, 11, 12, 13, 128101, 20, 21, 128100]
    ids = [128000, 128107, 50, 51, 52, 128100, *frame, 128104, 90, 11]
    assert draft(ids, 8) == [12, 13, 128101, 20, 21, 128100, 128104, 90]


def test_perfect_model_forwards_counts_accepted_drafts_plus_one() -> None:
    assert perfect_model_forwards([1, 2], [], 8) == 0
    assert perfect_model_forwards([1, 2, 3], [4, 5, 6], 8) == 3  # nothing repeats: one token per forward
    prompt = [1, 2, 3, 4, 5, 6, 7, 8, 9, 1]
    truth = [2, 3, 4, 5, 6, 7, 8, 9, 1, 2]
    assert perfect_model_forwards(prompt, truth, 8) == 2  # 8 drafted + 1, then the last token
    assert perfect_model_forwards(prompt, truth, 4) == 2  # 4 + 1, then (3, 4, 5, 6) drafts 7 8 9 1: 4 + 1
    assert perfect_model_forwards(prompt, truth, 0) == 10
    # a draft right for 2 tokens, then wrong: the model's own token (8) still comes in that forward
    assert perfect_model_forwards([5, 6, 7, 5], [6, 7, 8], 3) == 1
    # the last forward yields no more than what is left
    assert perfect_model_forwards([1, 2, 1], [2], 8) == 1


def test_perfect_model_forwards_replays_the_drafts() -> None:
    rng = random.Random(7)
    for _ in range(50):
        prompt = [rng.randrange(4) for _ in range(rng.randrange(1, 30))]
        truth = [rng.randrange(4) for _ in range(rng.randrange(0, 40))]
        seq, p, forwards = list(prompt), 0, 0
        while p < len(truth):  # the docstring's rule, with the scan instead of the index
            guess = draft(seq, 5)
            a = 0
            while a < len(guess) and p + a < len(truth) and guess[a] == truth[p + a]:
                a += 1
            step = min(a + 1, len(truth) - p)
            seq += truth[p : p + step]
            p, forwards = p + step, forwards + 1
        assert perfect_model_forwards(prompt, truth, 5) == forwards

"""Prompt-lookup drafts for speculative decoding: guess the next tokens by
finding the current suffix earlier in the sequence and copying what followed.

Traces repeat themselves (locals dicts, ``..`` diffs, source lines of a loop
body), so a draft copied from the prompt and the trace so far is often right.
Pure Python, no torch: the local backend's speculative decoder and the
benchmarks share it.

The rule, shared by :func:`draft` and :class:`NgramIndex`. For a sequence
``ids`` of length L, an occurrence of an n-gram is a start ``j`` with
``ids[j:j+n] == ids[L-n:L]`` and ``j + n < L`` (at least one token follows
it, so the suffix itself never counts; occurrences may overlap the suffix).
Take the largest n in ``max_ngram`` down to ``min_ngram`` (``n < L``) that has
an occurrence, then its most recent one (the largest ``j``); the draft is
``ids[j+n : j+n+k]``: up to k tokens, fewer where that runs into the end of
``ids``. No occurrence for any n (or ``k == 0``): the draft is ``[]``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def _check(k: int, max_ngram: int, min_ngram: int) -> None:
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    if not 1 <= min_ngram <= max_ngram:
        raise ValueError(f"need 1 <= min_ngram <= max_ngram, got {min_ngram}, {max_ngram}")


def draft(ids: Sequence[int], k: int, max_ngram: int = 4, min_ngram: int = 1) -> list[int]:
    """The draft of up to ``k`` tokens for ``ids`` (the module's rule).

    One backward scan from the end, stopping at the first position that
    matches ``max_ngram`` tokens: O(L * max_ngram) at worst, usually far
    less. For repeated calls on a growing sequence use :class:`NgramIndex`.
    Raises ValueError unless ``k >= 0`` and ``1 <= min_ngram <= max_ngram``.
    """
    _check(k, max_ngram, min_ngram)
    seq = ids if isinstance(ids, list) else list(ids)
    size = len(seq)
    if k == 0 or size < 2:
        return []
    last = seq[-1]
    best_len, best_end = 0, -1  # match length and the index of its last token
    # candidate occurrences end at `end` (inclusive) with end + 1 < size: a token follows them
    for end in range(size - 2, -1, -1):
        if seq[end] != last:
            continue
        limit = min(max_ngram, end + 1)
        n = 1
        while n < limit and seq[end - n] == seq[size - 1 - n]:
            n += 1
        if n > best_len:  # scanning backwards: the first of each length is the most recent
            best_len, best_end = n, end
            if n == max_ngram:
                break
    if best_len < min_ngram:
        return []
    return seq[best_end + 1 : best_end + 1 + k]


class NgramIndex:
    """An append-only sequence with an index of its n-grams, for drafts at
    O(max_ngram) per appended token and per :meth:`draft` (plus the copy).

    ``NgramIndex(ids).draft(k)`` equals ``draft(ids, k, max_ngram, min_ngram)``
    at every length. For each n it maps an n-gram to the position just after
    its most recent occurrence that has a successor; an occurrence is indexed
    only once its next token arrives, which is what keeps the suffix itself
    out. There is no truncation: after a rollback build a new index.
    """

    def __init__(self, ids: Iterable[int] = (), max_ngram: int = 4, min_ngram: int = 1) -> None:
        _check(0, max_ngram, min_ngram)
        self.max_ngram = max_ngram
        self.min_ngram = min_ngram
        self._ids: list[int] = []
        # _next[n - min_ngram][ngram] = index of the token after its latest indexed occurrence
        self._next: list[dict[tuple[int, ...], int]] = [{} for _ in range(min_ngram, max_ngram + 1)]
        self.extend(ids)

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def ids(self) -> Sequence[int]:
        """The sequence so far (read-only by convention)."""
        return self._ids

    def append(self, token: int) -> None:
        seq = self._ids
        pos = len(seq)  # `token` lands here: the n-grams ending just before it now have a successor
        for n, table in zip(range(self.min_ngram, self.max_ngram + 1), self._next):
            if pos < n:
                break
            table[tuple(seq[pos - n : pos])] = pos
        seq.append(token)

    def extend(self, tokens: Iterable[int]) -> None:
        for token in tokens:
            self.append(token)

    def draft(self, k: int) -> list[int]:
        """Up to ``k`` tokens that follow the latest occurrence of the longest
        indexed suffix (see the module's rule); ``[]`` when none."""
        _check(k, self.max_ngram, self.min_ngram)
        seq = self._ids
        size = len(seq)
        if k == 0:
            return []
        for n in range(min(self.max_ngram, size - 1), self.min_ngram - 1, -1):
            start = self._next[n - self.min_ngram].get(tuple(seq[size - n :]))
            if start is not None:
                return seq[start : start + k]
        return []


def perfect_model_forwards(prompt: Sequence[int], truth: Sequence[int], k: int,
                           max_ngram: int = 4, min_ngram: int = 1) -> int:
    """Forward passes a perfect model needs to decode ``truth`` after ``prompt``
    with these drafts: the ceiling of prompt-lookup speculative decoding.

    Before each forward the draft is that of ``prompt + truth[:p]`` (p tokens
    produced so far); the forward accepts the longest draft prefix equal to
    ``truth[p:]`` (a tokens) and yields one token of its own, so p advances
    by ``min(a + 1, len(truth) - p)``. ``len(truth) / forwards`` is the bound
    in tokens per forward (1.0 without drafts); ``truth == []`` needs 0.
    """
    index = NgramIndex(prompt, max_ngram=max_ngram, min_ngram=min_ngram)
    p = forwards = 0
    while p < len(truth):
        guess = index.draft(k)
        accepted = 0
        while accepted < len(guess) and p + accepted < len(truth) and guess[accepted] == truth[p + accepted]:
            accepted += 1
        step = min(accepted + 1, len(truth) - p)
        index.extend(truth[p : p + step])
        p += step
        forwards += 1
    return forwards

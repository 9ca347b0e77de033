"""How far a model agrees with a real run, and what it expected where it first does not.

:func:`neuraldbg.simulation.scoring.score_trace` rates a real trace under the
model in one teacher-forced pass. This module turns that rating into what an
editor shows: how many frames greedy decoding would have written, and for the
first frame it would not, the line to mark, what the frame part is (a local's
value, the next line, the return value, the event), the real text there, what
the model expected instead, and the model's probability of the real text (all
of its tokens, given the real run before it).

What the model "expected" is read from the one pass, without generating: the
real text up to the first token the model disagrees with, plus its greedy
token there; when that already closes a value (e.g. ``"3"`` or ``".."``) it
is the whole value, else it ends with ``…``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from neuraldbg.backends.base import CancelToken, ScoringBackend, TokenScore
from neuraldbg.simulation.scoring import score_trace, trace_ids
from neuraldbg.source.model import FunctionInfo
from neuraldbg.trace.cwm_encode import DIFF, diff_locals, reference_locals, source_line_text
from neuraldbg.trace.cwm_tokens import ACTION_SEP, ARG_SEP, EOT, TOKEN_EVENT, is_special, special_name
from neuraldbg.trace.frames import Trace
from neuraldbg.trace.tokenizer import TokenizerLike

Part = Literal["locals", "line", "value", "event"]
ELLIPSIS = "…"


@dataclass(frozen=True)
class FirstDivergence:
    """The first frame of the real run greedy decoding would not have written."""

    step: int  # index of the frame in the real trace
    event: str  # the real frame's event
    line: int  # 1-based line to mark: the line that produced a local's value, else the frame's line
    part: Part
    name: str | None  # the local (part "locals"; None when the model expected other locals)
    real: str  # the real value's repr, the real line, or the real event
    expected: str  # what the model expected there (ends with "…" when only its start is known)
    unchanged: bool  # the model expected the local to keep its previous value (``expected`` is that value)
    probability: float  # the model's probability of the real text, given the real run before it


@dataclass(frozen=True)
class Agreement:
    """A real run rated under a model (teacher-forced, from frame 1: the call frame is the input)."""

    frames: int  # scored frames
    agreeing: int  # frames whose every token is the model's greedy choice
    ends: bool | None  # the model expects the trace to end where the run ended (None: it did not end)
    first: FirstDivergence | None
    tokens: int  # scored tokens
    # the model's probability of each scored frame of the real run: (frame index, probability), from frame 1
    frame_probabilities: tuple[tuple[int, float], ...] = ()

    @property
    def accuracy(self) -> float:
        """Teacher-forced per-frame accuracy."""
        return self.agreeing / self.frames if self.frames else 1.0


class _Recorder:
    """A scoring backend that keeps the token scores of its last pass (the
    frame summary of score_trace does not carry them)."""

    def __init__(self, backend: ScoringBackend) -> None:
        self.backend = backend
        self.scores: list[TokenScore] = []

    def score(self, ids: Sequence[int], *, start: int, cancel: CancelToken | None = None) -> list[TokenScore]:
        self.scores = self.backend.score(ids, start=start, cancel=cancel)
        return self.scores


def measure_agreement(backend: ScoringBackend, tok: TokenizerLike, *, source: str, function: FunctionInfo,
                      trace: Trace, cancel: CancelToken | None = None) -> Agreement:
    """Rate ``trace`` (a real run of ``function`` in ``source``) under the model
    behind ``backend``, in one prefill (raises BackendError / Cancelled)."""
    recorder = _Recorder(backend)
    scored = score_trace(recorder, tok, source=source, function=function, trace=trace, cancel=cancel)
    step = scored.first_divergence
    first = None
    if step is not None:
        _context, chunks = trace_ids(tok, source, function, trace)
        at = sum(len(c) for c in chunks[1:step])
        first = _explain(tok, trace, step, chunks[step], recorder.scores[at : at + len(chunks[step])])
    return Agreement(frames=len(scored.frames), agreeing=sum(f.agrees for f in scored.frames), ends=scored.ends,
                     first=first, tokens=scored.tokens,
                     frame_probabilities=tuple((f.index, f.probability) for f in scored.frames))


def _explain(tok: TokenizerLike, trace: Trace, step: int, chunk: list[int], scores: list[TokenScore]) -> FirstDivergence:
    frames = trace.frames
    frame = frames[step]
    miss = next(j for j, s in enumerate(scores) if s.top != s.token)
    top = scores[miss].top
    if miss == 0:
        event = "the end of the run" if top == EOT else TOKEN_EVENT.get(top, _token_text(tok, top))
        return FirstDivergence(step, frame.event, frame.line, "event", None, frame.event, str(event), False,
                               math.exp(scores[0].logprob))
    action = chunk.index(ACTION_SEP)
    arg = chunk.index(ARG_SEP) if ARG_SEP in chunk else len(chunk) - 1
    if miss <= action:  # at <|action_sep|> itself the model wanted the locals to go on
        shown = frame.locals if frame.event == "call" else diff_locals(frame.locals, reference_locals(frames, step))
        return _in_locals(tok, trace, step, shown, chunk, scores, miss)
    if miss <= arg:
        text = source_line_text(frame)
        span = _Span(tok, chunk, action + 1, text)
        expected = _prefix(text, span, miss) + _token_text(tok, top)
        return FirstDivergence(step, frame.event, frame.line, "line", None, text.strip(), expected.strip() + ELLIPSIS, False,
                               span.probability(scores, 0, len(text)))
    text = json.dumps(frame.value if frame.value is not None else "None")
    span = _Span(tok, chunk, arg + 1, text)
    expected, _ = _json_value(_prefix(text, span, miss) + _token_text(tok, top))
    return FirstDivergence(step, frame.event, frame.line, "value", None, frame.value or "None", expected, False,
                           span.probability(scores, 0, len(text)))


def _in_locals(tok: TokenizerLike, trace: Trace, step: int, shown: dict[str, str], chunk: list[int],
               scores: list[TokenScore], miss: int) -> FirstDivergence:
    frame = trace.frames[step]
    text = json.dumps(shown)
    span = _Span(tok, chunk, 1, text)
    where = span.position(miss)
    line = _producing_line(trace, step)
    top = _token_text(tok, scores[miss].top)
    for name, value, start, end in _items(shown):
        if not start <= where < end:
            continue
        real = frame.locals.get(name, value)
        probability = span.probability(scores, start, end)
        expected, complete = _json_value(text[start:where] + top)
        unchanged = complete and expected == DIFF
        if unchanged:
            expected = (reference_locals(trace.frames, step) or {}).get(name, DIFF)
        return FirstDivergence(step, frame.event, line, "locals", name, real, expected, unchanged, probability)
    # Between items (a name, a separator, the braces): the model expected other locals than these.
    return FirstDivergence(step, frame.event, line, "locals", None, text, text[:where] + top + ELLIPSIS, False,
                           span.probability(scores, 0, len(text)))


def _items(shown: dict[str, str]) -> list[tuple[str, str, int, int]]:
    """(name, value, start, end) of each value's JSON string in ``json.dumps(shown)``."""
    out: list[tuple[str, str, int, int]] = []
    at = 1
    for name, value in shown.items():
        start = at + len(json.dumps(name)) + 2
        end = start + len(json.dumps(value))
        out.append((name, value, start, end))
        at = end + 2
    return out


def _producing_line(trace: Trace, step: int) -> int:
    """The line whose run left the locals of frame ``step``: the previous frame
    of its scope (a call frame's arguments: the calling line)."""
    frames = trace.frames
    frame = frames[step]
    if frame.event == "call":
        return frames[step - 1].line if step > 0 else frame.line
    for i in range(step - 1, -1, -1):
        if frames[i].depth < frame.depth:
            break
        if frames[i].depth == frame.depth:
            return frames[i].line
    return frame.line


class _Span:
    """Character positions of the tokens ``chunk[first:]`` that spell ``text``."""

    def __init__(self, tok: TokenizerLike, chunk: list[int], first: int, text: str) -> None:
        self.tok, self.chunk, self.first, self.text = tok, chunk, first, text
        self._cache: dict[int, int] = {}

    def position(self, index: int) -> int:
        """Where token ``chunk[index]`` starts in ``text``."""
        if index not in self._cache:
            self._cache[index] = len(self.tok.decode(self.chunk[self.first : index]))
        return self._cache[index]

    def probability(self, scores: list[TokenScore], start: int, end: int) -> float:
        """The model's probability of the tokens that spell ``text[start:end]``."""
        logprob = 0.0
        index = self.first
        while index < len(self.chunk) and self.position(index) < end:
            if is_special(self.chunk[index]):
                break
            if self.position(index + 1) > start:
                logprob += scores[index].logprob
            index += 1
        return math.exp(logprob)


def _prefix(text: str, span: _Span, index: int) -> str:
    return text[: span.position(index)]


def _token_text(tok: TokenizerLike, token: int) -> str:
    return special_name(token) if is_special(token) else tok.decode([token])


def _json_value(text: str) -> tuple[str, bool]:
    """The string value a JSON text starts with, and whether it is complete;
    an unfinished one reads as its start and ``…``."""
    decoder = json.JSONDecoder()
    try:
        value, _end = decoder.raw_decode(text)
        if isinstance(value, str):
            return value, True
    except ValueError:
        pass
    try:
        value = json.loads(text + '"')
        if isinstance(value, str):
            return value + ELLIPSIS, False
    except ValueError:
        pass
    return text.lstrip('"') + ELLIPSIS, False


__all__ = ["Agreement", "FirstDivergence", "measure_agreement"]

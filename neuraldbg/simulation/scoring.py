"""Score a real run under the model in one prefill.

Generating a trace costs one request per frame and one forward per token.
When a real run exists, its trace is already known: the prompt the model
would see (context plus every true frame, encoded by the codec exactly as the
model engine sends them) goes through the model once, teacher-forced, and each
token gets the model's log-probability and its greedy choice. Then:

- a frame *agrees* when the model's greedy token is the true one at every
  position of the frame (greedy decoding would have written it);
- the *first divergence* is the first frame that does not agree (where a
  generated trace would have left the real run);
- each frame gets its probability, and a frame's first disagreement is
  placed in what it belongs to: a local's value, the next line, the return
  value, or the event;
- the *teacher-forced per-frame accuracy* (the CWM paper's single-step
  metric) is the share of frames that agree.

The call frame is the input, written by the user (teacher forcing), as the
model engine writes it when a call is given: it is part of the prompt and
never scored; frame scores start at frame 1.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

from neuraldbg.backends.base import BackendError, CancelToken, ScoringBackend, TokenScore
from neuraldbg.source.model import FunctionInfo
from neuraldbg.trace.cwm_encode import DIFF, diff_locals, frame_id_lists, reference_locals
from neuraldbg.trace.cwm_prompt import mark_entry, trace_prompt_ids
from neuraldbg.trace.cwm_tokens import ACTION_SEP, ARG_SEP, EOT, is_special, special_name
from neuraldbg.trace.frames import Frame, Trace
from neuraldbg.trace.tokenizer import TokenizerLike


@dataclass(frozen=True)
class Disagreement:
    """Where the model's greedy choice first differs inside a frame."""

    part: str  # "event", "locals", "line", "value" or "end"
    name: str | None  # the local whose value it is in (part "locals")
    expected: str  # what the model's greedy token reads (text, or a special token's name)
    probability: float  # the model's probability of the true token there


@dataclass(frozen=True)
class FrameScore:
    index: int
    agrees: bool
    logprob: float  # of the whole frame given everything before it
    disagreement: Disagreement | None

    @property
    def probability(self) -> float:
        return math.exp(self.logprob)


@dataclass(frozen=True)
class TraceScore:
    frames: tuple[FrameScore, ...]
    ends: bool | None  # the model predicts the end of the trace after the last frame (None: the run did not end)
    tokens: int  # scored tokens

    @property
    def first_divergence(self) -> int | None:
        return next((f.index for f in self.frames if not f.agrees), None)

    @property
    def agreeing_prefix(self) -> int:
        """Frames a greedy generation would have reproduced before leaving the real run."""
        first = self.first_divergence
        return len(self.frames) if first is None else first

    @property
    def frame_accuracy(self) -> float:
        return sum(f.agrees for f in self.frames) / len(self.frames) if self.frames else 1.0


def trace_ids(tok: TokenizerLike, source: str, function: FunctionInfo, trace: Trace) -> tuple[list[int], list[list[int]]]:
    """The context ids and each frame's ids, as the model engine sends them."""
    context = trace_prompt_ids(tok, mark_entry(source, function.def_line))
    return context, frame_id_lists(tok, trace.frames)


def score_trace(backend: ScoringBackend, tok: TokenizerLike, *, source: str, function: FunctionInfo, trace: Trace,
                cancel: CancelToken | None = None) -> TraceScore:
    """Score ``trace`` (a real run of ``function`` in ``source``) in one pass."""
    if not trace.frames or trace.frames[0].event != "call":
        raise BackendError("nothing to score: the run has no call frame")
    context, frame_ids = trace_ids(tok, source, function, trace)
    prompt = context + frame_ids[0]
    ids = prompt + [t for chunk in frame_ids[1:] for t in chunk]
    ended = trace.status == "complete"
    if ended:
        ids.append(EOT)
    if len(ids) == len(prompt):
        return TraceScore((), None, 0)
    scores = backend.score(ids, start=len(prompt), cancel=cancel)
    if len(scores) != len(ids) - len(prompt):
        raise BackendError(f"the backend scored {len(scores)} tokens of {len(ids) - len(prompt)}")
    out: list[FrameScore] = []
    at = 0
    for i, (frame, chunk) in enumerate(zip(trace.frames, frame_ids)):
        if i == 0:
            continue
        part = scores[at : at + len(chunk)]
        at += len(chunk)
        miss = next((j for j, s in enumerate(part) if s.top != s.token), None)
        where = None if miss is None else _disagreement(tok, frame, trace.frames, i, chunk, miss, part[miss])
        out.append(FrameScore(i, miss is None, sum(s.logprob for s in part), where))
    end = scores[at].top == EOT if ended else None
    return TraceScore(tuple(out), end, len(scores))


def _disagreement(tok: TokenizerLike, frame: Frame, frames: Sequence[Frame], index: int, chunk: list[int],
                  offset: int, score: TokenScore) -> Disagreement:
    expected = special_name(score.top) if is_special(score.top) else tok.decode([score.top])
    probability = math.exp(score.logprob)
    if offset == 0:
        return Disagreement("event", None, expected, probability)
    action = chunk.index(ACTION_SEP)
    if offset <= action:  # at <|action_sep|> itself the model wanted more locals
        text = tok.decode(chunk[1:offset])
        shown = frame.locals if frame.event == "call" else diff_locals(frame.locals, reference_locals(frames, index))
        return Disagreement("locals", _local_at(shown, len(text)), expected, probability)
    if ARG_SEP in chunk and offset > chunk.index(ARG_SEP):
        return Disagreement("value", None, expected, probability)
    return Disagreement("line", None, expected, probability)


def _local_at(shown: dict[str, str], position: int) -> str | None:
    """The local whose ``"name": "value"`` item holds character ``position`` of
    ``json.dumps(shown)`` (the encoder's exact text)."""
    text = "{"
    for name, value in shown.items():
        start = len(text)
        text += json.dumps(name) + ": " + json.dumps(value)
        if start <= position < len(text) + 2:  # the ", " after an item still belongs to it
            return name
        text += ", "
    return None


__all__ = ["Disagreement", "FrameScore", "TraceScore", "score_trace", "trace_ids", "DIFF"]

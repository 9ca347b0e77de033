"""A TokenBackend that replays a real run through the model path.

It answers every trace-mode request with the token ids of the next frame of
a ground-truth trace (tracer, then codec), honouring forced events the way
CWM does (a forced return right after a call jumps to that call's return
frame). Everything a model backend exercises, the prompt building, the
streaming parser, the line mapper, the simulation's stepping, is exercised
with an answer known in advance: a replayed trace must come back as exactly
the ground truth.

A prompt whose frames differ from the truth (a teacher-forced edit) is
aligned frame by frame and the truth continues from there; the replay cannot
imagine what an edit would change, a model can.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from neuraldbg.backends.base import BackendError, BackendStats, CancelToken, Sampling
from neuraldbg.source.model import FunctionInfo
from neuraldbg.trace.cwm_encode import frame_id_lists
from neuraldbg.trace.cwm_prompt import mark_entry, trace_prompt_ids
from neuraldbg.trace.cwm_tokens import EOT, FRAME_SEP, RETURN_SEP, TOKEN_EVENT
from neuraldbg.trace.frames import Trace
from neuraldbg.trace.tokenizer import TokenizerLike


@dataclass
class ReplayBackend:
    truth: Trace
    context: list[int]
    frame_ids: list[list[int]]
    name: str = "replay"
    stats: BackendStats = field(default_factory=BackendStats)

    @classmethod
    def for_trace(cls, truth: Trace, tok: TokenizerLike, *, source: str, functions: Sequence[FunctionInfo]) -> "ReplayBackend":
        fn = next((f for f in functions if f.qualname == truth.function), None)
        if fn is None:
            raise BackendError(f"replay: no function {truth.function!r} in the source")
        context = trace_prompt_ids(tok, mark_entry(source, fn.def_line))
        return cls(truth=truth, context=context, frame_ids=frame_id_lists(tok, truth.frames))

    def answer(self, prompt: Sequence[int]) -> list[int]:
        """The ids of the real run's next frame for ``prompt`` (or ``[EOT]``)."""
        n = len(self.context)
        if list(prompt[:n]) != self.context:
            raise BackendError("replay: the prompt is not about the replayed program")
        rest = list(prompt[n:])
        frames: list[list[int]] = []
        start = 0
        for i, tok in enumerate(rest):
            if tok == FRAME_SEP:
                frames.append(rest[start : i + 1])
                start = i + 1
        tail = rest[start:]
        truth = self.truth.frames
        pos = 0
        for fr in frames:
            if pos < len(truth) and fr == self.frame_ids[pos]:
                pos += 1
            elif fr and fr[0] == RETURN_SEP and 0 < pos <= len(truth) and truth[pos - 1].event == "call":
                pos = self._return_of(pos - 1) + 1  # a step over skipped the callee's lines
            else:
                pos += 1  # a teacher-forced (edited) frame stands in for the true one
        if len(tail) > 1 or (tail and tail[0] not in TOKEN_EVENT):
            raise BackendError("replay: the prompt ends inside a frame")
        if pos >= len(truth):
            if self.truth.status == "complete":
                return [EOT]
            raise BackendError(f"replay: the real run stopped here ({self.truth.error or self.truth.status})")
        if not tail:
            return list(self.frame_ids[pos])
        forced = tail[0]
        if self.frame_ids[pos][0] == forced:
            return self.frame_ids[pos][1:]
        if forced == RETURN_SEP and pos > 0 and truth[pos - 1].event == "call":
            j = self._return_of(pos - 1)
            if j < len(truth):
                return self.frame_ids[j][1:]
        raise BackendError(f"replay: the real run has no {TOKEN_EVENT[forced]} frame here")

    def _return_of(self, call_index: int) -> int:
        truth = self.truth.frames
        depth = truth[call_index].depth
        for j in range(call_index + 1, len(truth)):
            if truth[j].depth == depth and truth[j].event == "return":
                return j
            if truth[j].depth < depth:
                break
        return len(truth)

    def generate(self, prompt: Sequence[int], *, stop_ids: Sequence[int], sampling: Sampling,
                 cancel: CancelToken | None = None) -> Iterator[int]:
        answer = self.answer(prompt)
        self.stats.requests += 1
        self.stats.prompt_tokens += len(prompt)
        self.stats.prefilled_tokens += len(prompt)
        stops = set(stop_ids)
        for count, tok in enumerate(answer):
            if cancel is not None:
                cancel.raise_if_cancelled()
            if count >= sampling.max_tokens:
                return
            self.stats.generated_tokens += 1
            yield tok
            if tok in stops:
                return

    def close(self) -> None:
        """Nothing to release."""


__all__ = ["ReplayBackend"]

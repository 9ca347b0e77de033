"""A model as a simulation engine: one request per frame through the CWM codec.

The prompt of every request is the context followed by the token ids of the
frames so far, kept per frame exactly as the model produced them (or as the
codec encoded a forced frame), so nothing is re-encoded and the backend's
KV/prefix cache sees the same prefix step after step.
"""

from __future__ import annotations

import logging
from dataclasses import replace as dc_replace
from typing import Sequence

from neuraldbg.backends.base import BackendError, CancelToken, Sampling, TokenBackend
from neuraldbg.source.call_binding import BindingError, bind_call, function_params
from neuraldbg.simulation.simulation import SimulationError, Step
from neuraldbg.source.model import FunctionInfo
from neuraldbg.trace.cwm_encode import encode_frame
from neuraldbg.trace.cwm_parse import RawFrame, StreamParser
from neuraldbg.trace.cwm_prompt import mark_entry, split_lines_keepends, trace_prompt_ids
from neuraldbg.trace.cwm_tokens import EVENT_TOKEN, TRACE_STOP_IDS
from neuraldbg.trace.frames import Event, Frame
from neuraldbg.trace.linemap import KnownCall, LineMapper
from neuraldbg.trace.tokenizer import TokenizerLike

log = logging.getLogger(__name__)

FRAME_TOKEN_CAP = 2048  # tokens one frame may take before we call the model stuck (when the profile does not say)


def step_seed(seed: int, step: int) -> int:
    """The sampler seed of ``step`` in a run seeded ``seed``. Mixed rather than
    added, so that run ``seed + 1`` (a resample) shares no step seed with run
    ``seed`` (``seed + step`` made resample k's first step the original's step k)."""
    return (seed * 1_000_003 + step * 998_244_353) % (1 << 62)


class ModelEngine:
    predicted = True
    supports_edit = True

    def __init__(self, backend: TokenBackend, tok: TokenizerLike, *, source: str, function: FunctionInfo,
                 functions: Sequence[FunctionInfo], call: str, sampling: Sampling, backend_kind: str,
                 frame_token_cap: int | None = None, call_locals: dict[str, str] | None = None,
                 input_sampling: Sampling | None = None, entry: Frame | None = None) -> None:
        self.backend_impl = backend
        self.tok = tok
        self.backend = backend_kind
        self.model = backend.name
        self.source = source
        self.function = function
        self.functions = list(functions)
        self.call = call
        # Reprs of the arguments when known from a real evaluation (replay, or
        # an exec run where execution is allowed); else bound from the call text.
        self.call_locals = call_locals
        # The real run's first frame when known. Calling a decorated function
        # enters the decorator's wrapper first (another function, another
        # line), so the entry is forced as the tracer wrote it, not on the def line.
        self.entry = entry if entry is not None and entry.event == "call" else None
        # The request budget is the sampling's (the profile's max_tokens) unless a cap is given.
        cap = {} if frame_token_cap is None else {"max_tokens": frame_token_cap}
        self.sampling = dc_replace(sampling, **cap)
        self.input_sampling = dc_replace(input_sampling or sampling, **cap)  # the imagined call frame
        self.context = trace_prompt_ids(tok, mark_entry(source, function.def_line))
        self._ids: list[list[int]] = []  # token ids of each frame made, exactly as in the prompt
        self._raws: list[RawFrame] = []
        self._known: list[KnownCall | None] = []  # where a frame we forced is known to be (mapped as is)
        self._n = 0  # how many of them are current (the rest were stepped back over)
        self._mapper = LineMapper(source, self.functions)
        self._ended = False

    # -- helpers -------------------------------------------------------------
    def prompt(self, forced: Event | None = None) -> list[int]:
        ids = list(self.context)
        for chunk in self._ids[: self._n]:
            ids += chunk
        if forced is not None:
            ids.append(EVENT_TOKEN[forced])
        return ids

    def _push(self, raw: RawFrame, ids: list[int], known: KnownCall | None = None) -> Frame:
        del self._raws[self._n:], self._ids[self._n:], self._known[self._n:]
        self._raws.append(raw)
        self._ids.append(ids)
        self._known.append(known)
        self._n += 1
        return self._mapper.push(raw, known)

    def _sampling_for_step(self, imagined_input: bool) -> Sampling:
        base = self.input_sampling if imagined_input else self.sampling
        # A seed per step: regenerating a step after a step back gives the same frame.
        if base.seed is None:
            return base
        return dc_replace(base, seed=step_seed(base.seed, self._n))

    def _generate(self, forced: Event | None, cancel: CancelToken | None) -> Step:
        prompt = self.prompt(forced)
        parser = StreamParser(self.tok)
        if forced is not None:
            parser.parse_forced(forced)
        produced: list[int] = []
        raws: list[RawFrame] = []
        for token_id in self.backend_impl.generate(prompt, stop_ids=TRACE_STOP_IDS, sampling=self._sampling_for_step(forced == "call"), cancel=cancel):
            produced.append(token_id)
            raws += parser.feed_ids([token_id])
            if any(r.event is not None for r in raws) or any(r.end for r in raws):
                break
        frames = [r for r in raws if r.event is not None]
        if frames:
            raw = frames[0]
            if any(r.end for r in raws):
                self._ended = True
            head = [EVENT_TOKEN[forced]] if forced is not None else []
            return Step(self._push(raw, head + produced))
        if any(r.end for r in raws):
            return Step(None, status="complete")
        tail = parser.close()
        if tail and tail[0].event is not None and len(produced) < self.sampling.max_tokens:
            # The stream stopped mid-frame without a stop token (e.g. a remote engine's own cap).
            return Step(None, error=f"the model stopped in the middle of a frame: {tail[0].problem}", status="error")
        return Step(None, error=f"the model did not finish a frame within {self.sampling.max_tokens} tokens", status="truncated")

    # -- Engine ------------------------------------------------------------------
    def first(self, cancel: CancelToken | None) -> Step:
        self.truncate(0)
        del self._raws[:], self._ids[:], self._known[:]
        if not self.call:
            return self._generate("call", cancel)  # the model imagines the inputs
        if self.entry is not None:
            e = self.entry
            return Step(self._force(Frame("call", e.line, e.function, 0, dict(e.locals), None, e.source), exact=True))
        locals_ = self.call_locals if self.call_locals is not None else self._bind()
        lines = split_lines_keepends(self.source)
        # Without a real run the call is taken to enter the target itself, on
        # its def line (decorators run before the call), as the tracer and CWM write it.
        line = self.function.def_line
        text = lines[line - 1].rstrip("\r\n") if line <= len(lines) else ""
        frame = Frame("call", line, self.function.qualname, 0, locals_, None, text)
        return Step(self._force(frame))

    def _bind(self) -> dict[str, str]:
        try:
            params = function_params(self._function_text())
            bound_self = None
            if self.function.is_method and params and params[0].name in ("self", "cls"):
                bound_self = _receiver(self.call)
            return bind_call(self.call, params, bound_self=bound_self)
        except BindingError as exc:
            raise SimulationError(f"cannot pass {self.call} to the model: {exc}") from None

    def next(self, frames: list[Frame], forced: Event | None, cancel: CancelToken | None) -> Step:
        if len(frames) != self._n:
            self.truncate(len(frames))
        if self._ended:
            return Step(None, status="complete")
        try:
            return self._generate(forced, cancel)
        except BackendError as exc:
            return Step(None, error=str(exc), status="error")

    def _force(self, frame: Frame, *, exact: bool = False) -> Frame:
        """Append a frame written by us (teacher forcing), in full. ``exact``:
        a call frame whose line and function are known (the real run's entry),
        not found again from its text (two wrappers may share a header)."""
        ids = encode_frame(self.tok, frame, None)
        line = frame.source if frame.source.endswith("\n") else frame.source + "\n"
        raw = RawFrame(event=frame.event, locals_raw=dict(frame.locals), source_line=line, value=frame.value)
        known = KnownCall(frame.line, frame.function) if exact and frame.event == "call" else None
        return self._push(raw, ids, known)

    def truncate(self, n: int) -> None:
        n = max(0, min(n, len(self._ids)))
        if n == self._n:
            return
        # The mapper is stateful (call stack, last line per scope): rebuild it.
        self._mapper = LineMapper(self.source, self.functions)
        for raw, known in zip(self._raws[:n], self._known[:n]):
            self._mapper.push(raw, known)
        self._n = n
        self._ended = False

    def redo(self) -> None:
        if self._n < len(self._raws):
            self._mapper.push(self._raws[self._n], self._known[self._n])
            self._n += 1

    def replace(self, step: int, frame: Frame) -> None:
        self.truncate(step)
        self._force(frame, exact=frame.line > 0)  # a frame of a trace already mapped: its position is known

    def reseed(self, seed: int | None) -> None:
        self.sampling = dc_replace(self.sampling, seed=seed)
        self.input_sampling = dc_replace(self.input_sampling, seed=seed)

    def _function_text(self) -> str:
        lines = split_lines_keepends(self.source)
        return "".join(lines[self.function.first_line - 1 : self.function.end_line])


def _receiver(call: str) -> str | None:
    """``Foo(2)`` for ``Foo(2).bar(3)``: what ``self`` is shown as."""
    import ast

    try:
        node = ast.parse(call.strip(), mode="eval").body
    except SyntaxError:
        return None
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        return ast.unparse(node.func.value)
    return None

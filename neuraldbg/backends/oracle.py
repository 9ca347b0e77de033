"""An oracle for trace prompts: the next token a perfect CWM would write.

Given any trace-mode prompt (``BOS <|trace_context_start|> SOURCE
<|frame_sep|> FRAME* [event]``) and the tokens generated after it, the oracle
works out, from nothing but those ids, which token the real run of the program
has next:

- the program is the SOURCE of the prompt (decoded with the model's
  tokenizer), the entry the function whose ``def`` line carries the START
  marker;
- the input is the call frame's locals (the first frame), turned back into a
  call string and run for real by the exec tracer (sandboxed, cached per
  input), then encoded with the CWM codec;
- the frames so far are aligned with the real run the way
  :class:`~neuraldbg.backends.replay.ReplayBackend` aligns them, so forced
  events are honoured as CWM honours them: a forced ``<|return_sep|>`` right
  after a call frame is the callee's real return frame (step over), and every
  other stepping command (step out, run to line, step back, reverse continue)
  is made of those requests;
- while the call frame itself is open (the model imagines an input), every
  input the source names for the entry (doctest examples, ``__main__`` calls,
  pytest tests in the file) is allowed: greedy decoding writes the first, a
  sampler at a temperature above 0 picks among them by its seed.

After an edited frame (a teacher-forced frame whose locals differ from the real
run's), the continuation is the real run's from the position the edited frame
holds: a well-formed trace, not a counterfactual one, since a real run cannot
resume from an edited state. An edit of the call frame's arguments is a new
input, and the oracle runs the program on it.

Where the prompt is not a trace prompt, the real run failed or stopped early,
or the generated tokens have left the real continuation, the oracle has no
answer (``None``) and the model's own logits decide: a divergence is then as
bounded and flagged as any model's garbage.

:class:`OracleLogitsProcessor` applies the oracle inside a real generation
loop as a transformers ``LogitsProcessor``: the model runs every forward pass
(prefill, KV cache, decode) and the processor only masks its logits, so the
frames a test or a benchmark sees were written by the model's decode loop.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from neuraldbg.backends.base import BackendError
from neuraldbg.backends.replay import ReplayBackend
from neuraldbg.source.call_binding import BindingError, Param, function_params
from neuraldbg.source.model import FunctionInfo
from neuraldbg.trace.cwm_encode import frame_id_lists
from neuraldbg.trace.cwm_parse import parse_ids
from neuraldbg.trace.cwm_prompt import marked_lines, split_lines_keepends, strip_marker
from neuraldbg.trace.cwm_tokens import CALL_SEP, FRAME_SEP, TOKEN_EVENT, TRACE_CONTEXT_START
from neuraldbg.trace.frames import Trace
from neuraldbg.trace.tokenizer import TokenizerLike
from neuraldbg.tracer.limits import Limits

log = logging.getLogger(__name__)

FORBIDDEN_LOGIT = -1.0e4  # finite, so that scores stay JSON numbers; far below any real logit
_CACHE_SIZE = 256


@dataclass(frozen=True)
class _Program:
    """The program a prompt is about."""

    context: tuple[int, ...]  # the prompt up to and including the context's <|frame_sep|>
    source: str  # the SOURCE text with the START marker removed (what runs)
    function: FunctionInfo
    functions: tuple[FunctionInfo, ...]
    inputs: tuple[str, ...]  # the calls the source names for the entry


@dataclass(frozen=True)
class _Cursor:
    """A prompt (and what was generated after it) as the oracle reads it."""

    ids: list[int]
    program: _Program
    end: int  # index of the context's <|frame_sep|>
    last_sep: int  # index of the last <|frame_sep|> (``end`` while no frame is complete)
    key: int  # hash of ids[: last_sep + 1]


@dataclass
class OracleStats:
    forced: int = 0  # tokens the oracle decided (one allowed id)
    choices: int = 0  # tokens with several allowed ids (an imagined input)
    free: int = 0  # tokens the oracle had no answer for (the model's own logits)
    runs: int = 0  # real runs of a program


@dataclass
class TraceOracle:
    """Answers :meth:`allowed` for any trace prompt (thread-safe enough for
    one generation at a time, which is how the backends call it)."""

    tok: TokenizerLike
    limits: Limits = field(default_factory=Limits)
    stats: OracleStats = field(default_factory=OracleStats)

    def __post_init__(self) -> None:
        self._programs: OrderedDict[tuple[int, ...], _Program | None] = OrderedDict()
        self._replays: OrderedDict[tuple[str, str], ReplayBackend | None] = OrderedDict()
        self._answers: OrderedDict[tuple[int, int, int], list[int] | None] = OrderedDict()
        self._last: _Cursor | None = None

    # ------------------------------------------------------------------ public

    def allowed(self, ids: Sequence[int]) -> list[int] | None:
        """The ids the real continuation of ``ids`` allows next (one, or several
        while an imagined input is being written), or None for no answer.
        A list is kept as given (the caller must not change it afterwards)."""
        ids = ids if isinstance(ids, list) else list(ids)
        cur = self._cursor(ids)
        if cur is None:
            return None
        tail = ids[cur.last_sep + 1 :]
        if cur.last_sep == cur.end:
            return self._imagined(cur.program, tail)
        event = tail[0] if tail else None
        if event is not None and event not in TOKEN_EVENT:
            return None
        key = (cur.key, cur.last_sep, -1 if event is None else event)
        if key in self._answers:
            self._answers.move_to_end(key)
            full = self._answers[key]
        else:
            done = ids[cur.end + 1 : cur.last_sep + 1]
            first = done[: done.index(FRAME_SEP) + 1]
            full = None if first[0] != CALL_SEP else self._answer(cur.program, first, list(cur.program.context) + done, event)
            _put(self._answers, key, full)
        if full is None or len(tail) >= len(full) or full[: len(tail)] != tail:
            return None
        return [full[len(tail)]]

    def _cursor(self, ids: list[int]) -> _Cursor | None:
        """Where ``ids`` stands: its program and its last complete frame. A
        call that extends the previous one (every decode step, every scored
        position) reads only the new ids, so a long trace costs O(1) per token
        here rather than a fresh parse of the whole prompt."""
        last = self._last
        if last is not None and len(ids) >= len(last.ids) and ids[: len(last.ids)] == last.ids:
            new = ids[len(last.ids) :]
            if FRAME_SEP not in new:
                cur = _Cursor(ids, last.program, last.end, last.last_sep, last.key)
            else:
                sep = len(ids) - 1 - new[::-1].index(FRAME_SEP)
                cur = _Cursor(ids, last.program, last.end, sep, hash(tuple(ids[: sep + 1])))
        else:
            try:
                start = ids.index(TRACE_CONTEXT_START)
                end = ids.index(FRAME_SEP, start)
            except ValueError:
                return None
            program = self._program(tuple(ids[: end + 1]))
            if program is None:
                return None
            sep = len(ids) - 1 - ids[::-1].index(FRAME_SEP)
            cur = _Cursor(ids, program, end, sep, hash(tuple(ids[: sep + 1])))
        self._last = cur
        return cur

    # ------------------------------------------------------------------ pieces

    def _answer(self, program: _Program, call_frame: list[int], prompt: list[int], event: int | None) -> list[int] | None:
        call = self._call_from_frame(program, call_frame)
        replay = self._replay(program, call) if call is not None else None
        if replay is None:
            return None
        try:
            answer = replay.answer(prompt + ([event] if event is not None else []))
        except BackendError as exc:
            log.debug("oracle: no answer: %s", exc)
            return None
        return ([event] if event is not None else []) + answer

    def _imagined(self, program: _Program, tail: list[int]) -> list[int] | None:
        if tail and tail[0] != CALL_SEP:
            return None
        options: list[int] = []
        for call in program.inputs:
            replay = self._replay(program, call)
            if replay is None or not replay.frame_ids:
                continue
            frame = replay.frame_ids[0]
            if len(frame) > len(tail) and frame[: len(tail)] == tail and frame[len(tail)] not in options:
                options.append(frame[len(tail)])
        return options or None

    def _program(self, context: tuple[int, ...]) -> _Program | None:
        if context in self._programs:
            self._programs.move_to_end(context)
            return self._programs[context]
        program = self._read_program(context)
        _put(self._programs, context, program)
        return program

    def _read_program(self, context: tuple[int, ...]) -> _Program | None:
        from neuraldbg.source.index import index_text

        start = context.index(TRACE_CONTEXT_START)
        text = self.tok.decode(list(context[start + 1 : -1]))
        lines = split_lines_keepends(text)
        marked = marked_lines(text)
        if len(marked) != 1:
            return None
        lines[marked[0] - 1] = strip_marker(lines[marked[0] - 1])
        source = "".join(lines)
        index = index_text(source)
        function = next((f for f in index.functions if f.def_line == marked[0]), None)
        if function is None:
            return None
        inputs = tuple(dict.fromkeys(e.call for e in index.entries if e.function == function.qualname and e.call))
        return _Program(context, source, function, tuple(index.functions), inputs)

    def _replay(self, program: _Program, call: str) -> ReplayBackend | None:
        key = (program.source, call)
        if key in self._replays:
            self._replays.move_to_end(key)
            return self._replays[key]
        replay = self._run(program, call)
        _put(self._replays, key, replay)
        return replay

    def _run(self, program: _Program, call: str) -> ReplayBackend | None:
        from neuraldbg.tracer import run_trace

        self.stats.runs += 1
        truth: Trace = run_trace(program.source, call, function=program.function.qualname,
                                 path="<cwm-context>", limits=self.limits)
        if not truth.frames:
            log.debug("oracle: %s gave no frames (%s)", call, truth.error or truth.status)
            return None
        ids = frame_id_lists(self.tok, truth.frames)
        return ReplayBackend(truth=truth, context=list(program.context), frame_ids=ids, name="oracle")

    def _call_from_frame(self, program: _Program, frame_ids: list[int]) -> str | None:
        raws = parse_ids(self.tok, frame_ids)
        if not raws or raws[0].event != "call" or raws[0].flagged:
            return None
        fn = program.function
        lines = split_lines_keepends(program.source)
        try:
            params = function_params("".join(lines[fn.first_line - 1 : fn.end_line]))
        except BindingError:
            return None
        return call_from_locals(fn, params, raws[0].locals_raw)


def call_from_locals(fn: FunctionInfo, params: Sequence[Param], locals_: dict[str, str]) -> str | None:
    """The call string that binds ``locals_`` (name -> repr) to ``fn``'s
    parameters: positional in order, ``*args``/``**kwargs`` unpacked,
    keyword-only by name; a method is called on its ``self``'s repr."""
    params = list(params)
    receiver = None
    if fn.is_method and params and params[0].name in ("self", "cls"):
        receiver = locals_.get(params.pop(0).name)
        if receiver is None:
            return None
    args: list[str] = []
    for p in params:
        value = locals_.get(p.name)
        if value is None:
            if p.kind in ("vararg", "varkw"):
                continue
            return None
        if p.kind == "positional":
            args.append(value)
        elif p.kind == "vararg":
            args.append(f"*{value}")
        elif p.kind == "keyword":
            args.append(f"{p.name}={value}")
        else:
            args.append(f"**{value}")
    callee = fn.name if receiver is None else f"{receiver}.{fn.name}"
    if receiver is None and "." in fn.qualname:
        return None  # a nested function cannot be called from the module
    return f"{callee}({', '.join(args)})"


def _put(cache: OrderedDict, key: object, value: object) -> None:
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > _CACHE_SIZE:
        cache.popitem(last=False)


class OracleLogitsProcessor:
    """A transformers ``LogitsProcessor`` (the same ``(input_ids, scores)``
    contract) that masks the logits to what ``oracle`` allows, leaving the
    model's own logits where it has no answer. ``input_ids`` may also be a
    list of id lists (``takes_id_lists``): the local backend then skips a
    tensor round trip per token, which on a long trace is most of the cost."""

    takes_id_lists = True

    def __init__(self, oracle: TraceOracle) -> None:
        self.oracle = oracle

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        rows = input_ids if isinstance(input_ids, list) else input_ids.tolist()
        for row, seq in enumerate(rows):
            allowed = self.oracle.allowed(seq)
            if allowed is None:
                self.oracle.stats.free += 1
                continue
            if len(allowed) == 1:
                self.oracle.stats.forced += 1
            else:
                self.oracle.stats.choices += 1
            # In place: the masked row replaces the model's logits (a view of the forward's output).
            scores[row].fill_(FORBIDDEN_LOGIT)
            scores[row, allowed] = 0.0
        return scores


def load_oracle_backend(checkpoint: str, **load_kwargs: Any) -> tuple[Any, TraceOracle]:
    """A :class:`~neuraldbg.backends.local.LocalBackend` for ``checkpoint`` (a
    real CWM folder, usually the tiny random one) with the oracle in its
    decode loop: the oracle-forced CWM the tests and benchmarks run on."""
    from neuraldbg.backends.local import LocalBackend

    backend = LocalBackend.load(checkpoint, **load_kwargs)
    oracle = TraceOracle(backend.tokenizer)
    backend.logits_processor = OracleLogitsProcessor(oracle)
    backend.name = f"{backend.name} (oracle-forced)"
    return backend, oracle


__all__ = ["load_oracle_backend", "TraceOracle", "OracleStats", "call_from_locals", "OracleLogitsProcessor", "FORBIDDEN_LOGIT"]

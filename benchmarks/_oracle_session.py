"""Shared by the model benchmarks: the oracle-forced CWM, a backend proxy
that checks every request wrote one complete frame, and a scripted debug
session through the Simulation.

A model-path figure counts only if a model wrote the frames it measures: the
oracle-forced CWM (neuraldbg.backends.oracle) is a real random
CwmForCausalLM in the real decode loop whose logits are masked to the real
run's next token, so every prefill, KV reuse and decode forward runs and the
frames are the real run's. Each request is checked here; a benchmark exits
non-zero when one was missing or flagged (see :func:`check`).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neuraldbg.backends.base import BackendStats, CancelToken, Sampling
from neuraldbg.testing.tiny_model import SMALL, TINY, RandomCwmSize, build_tiny_cwm
from neuraldbg.simulation.model_engine import ModelEngine
from neuraldbg.simulation.simulation import Simulation
from neuraldbg.source.index import index_text
from neuraldbg.trace.cwm_parse import parse_ids
from neuraldbg.trace.cwm_tokens import EOT, FRAME_SEP, TOKEN_EVENT

SIZES: dict[str, RandomCwmSize] = {"tiny": TINY, "small": SMALL}


def oracle_folder(size: str) -> Path:
    """The random CWM of ``size`` with the Llama-3 BPE (realistic token
    counts), built once into the temp folder."""
    return build_tiny_cwm(Path(tempfile.gettempdir()) / f"neuraldbg-bench-{size}-llama3-cwm", size=SIZES[size],
                          tokenizer="llama3")


@dataclass
class RequestLog:
    requests: int = 0
    complete_frames: int = 0  # requests whose output is exactly one well-formed frame
    ends: int = 0  # requests whose output is only the end of the trace (<|end_of_text|>)
    max_prompt: int = 0  # longest prompt sent (tokens)
    bad: list[str] = field(default_factory=list)  # what the other requests returned


class CheckedBackend:
    """A TokenBackend proxy: every request's output is parsed and must be one
    complete, unflagged frame (counted in :attr:`log`)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.log = RequestLog()

    def __getattr__(self, name: str) -> Any:  # name, stats, tokenizer, vocab_size, context_tokens ...
        return getattr(self.inner, name)

    def generate(self, prompt: Sequence[int], *, stop_ids: Sequence[int], sampling: Sampling,
                 cancel: CancelToken | None = None) -> Iterator[int]:
        self.log.requests += 1
        self.log.max_prompt = max(self.log.max_prompt, len(prompt))
        produced: list[int] = []
        try:
            for token in self.inner.generate(prompt, stop_ids=stop_ids, sampling=sampling, cancel=cancel):
                produced.append(token)
                yield token
        finally:
            self._judge(prompt[-1] if prompt else None, produced)

    def _judge(self, last_prompt_id: int | None, produced: list[int]) -> None:
        head = [last_prompt_id] if last_prompt_id in TOKEN_EVENT else []  # a forced event is in the prompt
        raws = parse_ids(self.inner.tokenizer, head + produced)
        frames = [r for r in raws if r.event is not None]
        if produced and produced[-1] == FRAME_SEP and len(frames) == 1 and not frames[0].flagged:
            self.log.complete_frames += 1
        elif produced == [EOT]:
            self.log.ends += 1
        else:
            problem = frames[0].problem if frames else "no frame"
            self.log.bad.append(f"request {self.log.requests}: {len(produced)} tokens, {problem}")

    def close(self) -> None:
        self.inner.close()


class FreshPool:
    """A local backend whose KV pool is emptied before every request: each
    prompt is prefilled from scratch, as when the release's demo re-sends the
    whole prefix (decoding inside a request still uses its KV cache)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def generate(self, prompt: Sequence[int], **kw: Any) -> Iterator[int]:
        self.inner.contexts.clear()
        return self.inner.generate(prompt, **kw)


class CountingEngine:
    """An Engine proxy counting the steps that needed a new frame (``next``
    calls that returned one)."""

    def __init__(self, inner: ModelEngine) -> None:
        self.inner = inner
        self.new_frames = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def next(self, frames: list[Any], forced: Any, cancel: CancelToken | None) -> Any:
        step = self.inner.next(frames, forced, cancel)
        self.new_frames += int(step.frame is not None)
        return step


@dataclass(frozen=True)
class Program:
    source: str
    function: str
    call: str


@dataclass
class SessionResult:
    wall_s: float
    steps_asked: int
    new_frames: int  # steps that needed a frame from the model
    log: RequestLog
    stats: BackendStats  # the backend's counters over the session only
    flagged: int  # frames of the final state that were flagged
    oracle_s: float = 0.0  # time spent inside the oracle's logits processor


def stats_delta(after: BackendStats, before: BackendStats) -> BackendStats:
    return BackendStats(**{k: getattr(after, k) - getattr(before, k) for k in vars(after)})


def snapshot(stats: BackendStats) -> BackendStats:
    return BackendStats(**vars(stats))


# A move: ("in",), ("over",), ("out",), ("back",), ("line", N), ("edit", NAME, VALUE), ("resample", SEED)
Move = tuple[Any, ...]


PROGRAM = Program('''\
def is_prime(n):
    if n < 2:
        return False
    d = 2
    while d * d <= n:
        if n % d == 0:
            return False
        d += 1
    return True


def digit_sum(n):
    s = 0
    while n:
        s += n % 10
        n //= 10
    return s


def scan(limit):
    primes = []
    total = 0
    for n in range(limit):
        if is_prime(n):
            primes.append(n)
            total += digit_sum(n)
    return primes, total
''', "scan", "scan(40)")

# The standard debug session: scan(40) has 612 frames in its real trace, and
# two helpers called in a loop so that step over / out have calls to skip.
I, O, U, B = ("in",), ("over",), ("out",), ("back",)
MOVES: list[Move] = [
    I, I, I, I, I, O, O, U, O, O, ("line", 26), I, I, I, B, B, I, I, U, O,
    ("edit", "total", "100"), O, O, O, I, I, O, U, O, B, B, B, O, ("line", 25), O, O,
    ("resample", 7), I, I, I, O, O, ("line", 26), O, O, ("line", 24), I, I, U, O,
]
QUICK: list[Move] = [I, I, I, I, I, O, U, ("line", 26), B, B, I, ("edit", "total", "100"), O, ("resample", 7), I, O]

def simulation(backend: Any, program: Program, sampling: Sampling, kind: str = "local") -> tuple[Simulation, CountingEngine]:
    index = index_text(program.source)
    fn = index.function(program.function)
    assert fn is not None, program.function
    engine = CountingEngine(ModelEngine(backend, backend.tokenizer, source=program.source, function=fn,
                                        functions=index.functions, call=program.call, sampling=sampling,
                                        backend_kind=kind))
    return Simulation(engine, function=program.function, call=program.call, max_frames=10_000), engine  # type: ignore[arg-type]


def apply(sim: Simulation, move: Move) -> None:
    kind = move[0]
    if kind == "line":
        sim.run_to_line(move[1])
    elif kind == "edit":
        sim.edit(len(sim.frames) - 1, move[1], move[2])
    elif kind == "resample":
        sim.resample(move[1])
    else:
        {"in": sim.step_in, "over": sim.step_over, "out": sim.step_out, "back": sim.step_back}[kind]()


def run_session(backend: CheckedBackend, program: Program, moves: Sequence[Move], sampling: Sampling,
                kind: str = "local", stats_of: Any = None, model: Any = None) -> SessionResult:
    """Drive ``moves`` from the entry's call frame; ``stats_of`` is the object
    whose ``.stats`` count the work (the backend itself by default),
    ``model`` the local backend whose oracle time is read (the same by
    default; the served one for a remote run)."""
    counted = stats_of if stats_of is not None else backend
    model = model if model is not None else counted
    sim, engine = simulation(backend, program, sampling, kind)
    backend.log = RequestLog()
    before = snapshot(counted.stats)
    oracle_before = _oracle_seconds(model)
    t0 = time.perf_counter()
    sim.start()
    for move in moves:
        if sim.done:
            raise SystemExit(f"the session ended before its last move ({sim.status}: {sim.error})")
        apply(sim, move)
    wall = time.perf_counter() - t0
    return SessionResult(wall, len(moves), engine.new_frames, backend.log, stats_delta(counted.stats, before),
                         sum(f.flagged for f in sim.frames), _oracle_seconds(model) - oracle_before)


def _oracle_seconds(backend: Any) -> float:
    return getattr(getattr(backend, "logits_processor", None), "seconds", 0.0)


class TimedProcessor:
    """Wraps a logits processor and adds up the time spent in it (the
    oracle's cost is not a model's: a reader should see how much it is)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.seconds = 0.0

    def __call__(self, ids: Any, scores: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return self.inner(ids, scores)
        finally:
            self.seconds += time.perf_counter() - t0


def check_log(log: RequestLog, label: str) -> list[str]:
    """The requests that returned something else than one complete frame or the end of the trace."""
    return [f"{label}: {bad}" for bad in log.bad]


def check(result: SessionResult, label: str) -> list[str]:
    """What is wrong with a session (empty when every step that needed a new
    frame got exactly one complete, unflagged frame from one request)."""
    log = result.log
    errors = check_log(log, label)
    if result.new_frames != log.complete_frames or log.requests != log.complete_frames + log.ends:
        errors.append(f"{label}: {result.new_frames} steps needed a new frame, {log.requests} requests, "
                      f"{log.complete_frames} complete frames, {log.ends} ends of trace")
    if result.flagged:
        errors.append(f"{label}: {result.flagged} flagged frames")
    if result.new_frames == 0:
        errors.append(f"{label}: the model wrote no frame")
    return errors

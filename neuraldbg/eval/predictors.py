"""One way to get a predicted trace per backend, for the evaluation harness.

A predictor turns a program (source, entry function, call) into a whole
trace through the same simulation the editor and the CLI use, capped at a
frame budget. ``exec`` walks the real run (the ground truth is its own
prediction); ``replay`` feeds the real run back through the model path
(prompt, parser, line mapper), so it must reproduce it exactly; ``local`` and
``remote`` ask CWM, and also rate the real run under the model in one
teacher-forced prefill (``score``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from neuraldbg.backends.base import BackendError, ProgressCallback, Sampling, ScoringBackend, TokenBackend
from neuraldbg.config import Settings
from neuraldbg.simulation.factory import EngineFactory
from neuraldbg.simulation.scoring import TraceScore, score_trace
from neuraldbg.eval.errors import EvalError
from neuraldbg.simulation.model_engine import FRAME_TOKEN_CAP
from neuraldbg.simulation.simulation import Simulation
from neuraldbg.source.index import index_text
from neuraldbg.source.model import FunctionInfo, SourceIndex
from neuraldbg.trace.frames import Trace
from neuraldbg.trace.tokenizer import TokenizerLike
from neuraldbg.tracer import Limits, run_trace

log = logging.getLogger(__name__)

EVAL_BACKENDS: tuple[str, ...] = ("exec", "replay", "local", "remote")
__all__ = ["EVAL_BACKENDS", "EvalError", "ExecPredictor", "ModelPredictor", "Predictor", "Program", "ReplayPredictor",
           "make_predictor"]


@dataclass(frozen=True)
class Program:
    """One call to predict: ``call`` runs ``function`` of ``source``."""

    source: str
    function: str  # qualified name of the entry function
    call: str
    path: str = "<eval>"

    def truth(self, limits: Limits) -> Trace:
        """The real run (sandboxed tracer)."""
        return run_trace(self.source, self.call, function=self.function, path=self.path, limits=limits)


class Predictor(Protocol):
    backend: str
    model: str | None
    needs_truth: bool  # True: predict() needs the real run (exec, replay)

    def predict(self, program: Program, *, max_frames: int, truth: Trace | None) -> Trace:
        """The predicted trace of ``program`` (at most ``max_frames`` frames).
        Raises on failures of the harness's own inputs (no such function,
        a call that cannot be bound); a model's bad output is in the trace."""
        ...

    def score(self, program: Program, truth: Trace) -> TraceScore | None:
        """The real run rated under the model, teacher-forced (None: no model
        to rate it). Raises BackendError when the model cannot score it."""
        ...

    def close(self) -> None: ...


def _entry(program: Program) -> tuple[SourceIndex, FunctionInfo]:
    index = index_text(program.source)
    fn = index.function(program.function)
    if fn is None:
        raise EvalError(f"no function {program.function!r} in the program")
    return index, fn


def _first_locals(truth: Trace | None) -> dict[str, str] | None:
    """The real argument reprs, as the tracer wrote them in the call frame."""
    if truth is None or not truth.frames or truth.frames[0].event != "call":
        return None
    return dict(truth.frames[0].locals)


class _Unrated:
    """A predictor without a model: the real run has nothing to be rated under
    (exec is the real run; replay reproduces it by construction)."""

    def score(self, program: Program, truth: Trace) -> TraceScore | None:
        return None


class ExecPredictor(_Unrated):
    """The real run, walked through the simulation (its own prediction)."""

    backend = "exec"
    model: str | None = None
    needs_truth = True

    def __init__(self, limits: Limits = Limits()) -> None:
        self.limits = limits

    def predict(self, program: Program, *, max_frames: int, truth: Trace | None) -> Trace:
        from neuraldbg.simulation.exec_engine import ExecEngine

        if truth is None:
            truth = program.truth(self.limits)
        sim = Simulation(ExecEngine(truth), function=program.function, call=program.call, max_frames=max_frames)
        trace = sim.run_to_end()
        trace.stdout = truth.stdout
        return trace

    def close(self) -> None:
        """Nothing to release."""


class ReplayPredictor(_Unrated):
    """The real run replayed as token ids through the model path."""

    backend = "replay"
    model: str | None = "replay"
    needs_truth = True

    def __init__(self, limits: Limits = Limits(), sampling: Sampling = Sampling()) -> None:
        from neuraldbg.trace.tokenizer import TextTokenizer

        self.limits = limits
        self.sampling = sampling
        self.tok: TokenizerLike = TextTokenizer()

    def predict(self, program: Program, *, max_frames: int, truth: Trace | None) -> Trace:
        from neuraldbg.backends.replay import ReplayBackend
        from neuraldbg.simulation.model_engine import ModelEngine

        if truth is None:
            truth = program.truth(self.limits)
        index, fn = _entry(program)
        if not truth.frames:
            # Nothing to replay: the real run could not start.
            return Trace(function=program.function, call=program.call, backend="replay", status="error",
                         error=truth.error or "the real run produced no frames", predicted=True, model="replay")
        backend = ReplayBackend.for_trace(truth, self.tok, source=program.source, functions=index.functions)
        engine = ModelEngine(backend, self.tok, source=program.source, function=fn, functions=index.functions,
                             call=program.call, sampling=self.sampling, backend_kind="replay",
                             call_locals=_first_locals(truth))
        return Simulation(engine, function=program.function, call=program.call, max_frames=max_frames).run_to_end()

    def close(self) -> None:
        """Nothing to release."""


class ModelPredictor:
    """CWM (or any model) through a shared token backend."""

    needs_truth = False

    def __init__(self, backend: TokenBackend, tok: TokenizerLike, *, backend_kind: str, sampling: Sampling,
                 frame_token_cap: int = FRAME_TOKEN_CAP, factory: EngineFactory | None = None) -> None:
        self.impl = backend
        self.tok = tok
        self.backend = backend_kind
        self.model = backend.name
        self.sampling = sampling
        self.frame_token_cap = frame_token_cap
        self._factory = factory

    def predict(self, program: Program, *, max_frames: int, truth: Trace | None) -> Trace:
        from neuraldbg.simulation.model_engine import ModelEngine

        index, fn = _entry(program)
        # With a real run at hand, the call frame shows the arguments as the
        # tracer (and CWM's training data) wrote them; else they are bound
        # from the call's text.
        engine = ModelEngine(self.impl, self.tok, source=program.source, function=fn, functions=index.functions,
                             call=program.call, sampling=self.sampling, backend_kind=self.backend,
                             frame_token_cap=self.frame_token_cap, call_locals=_first_locals(truth))
        return Simulation(engine, function=program.function, call=program.call, max_frames=max_frames).run_to_end()

    def score(self, program: Program, truth: Trace) -> TraceScore | None:
        if not isinstance(self.impl, ScoringBackend) or not truth.frames:
            return None
        _index, fn = _entry(program)
        return score_trace(self.impl, self.tok, source=program.source, function=fn, trace=truth)

    def close(self) -> None:
        if self._factory is not None:
            self._factory.close()


def make_predictor(backend: str, *, model: str = "", url: str = "", api_key: str = "",
                   sampling: Sampling = Sampling(), limits: Limits = Limits(),
                   frame_token_cap: int = FRAME_TOKEN_CAP, progress: ProgressCallback | None = None) -> Predictor:
    """The predictor for a backend name; model backends are loaded here
    (errors as :class:`EvalError`, one line)."""
    if backend == "exec":
        return ExecPredictor(limits)
    if backend == "replay":
        return ReplayPredictor(limits, sampling)
    if backend not in EVAL_BACKENDS:
        raise EvalError(f"unknown backend {backend!r} (use one of {', '.join(EVAL_BACKENDS)})")
    factory = EngineFactory(progress=progress, require_permission=False)
    settings = Settings(backend=backend, profile=model, url=url, api_key=api_key,
                        temperature=sampling.temperature, seed=sampling.seed or 0)
    try:
        impl, tok = factory.backend(settings)
    except BackendError as exc:
        factory.close()
        raise EvalError(str(exc)) from None
    return ModelPredictor(impl, tok, backend_kind=backend, sampling=sampling, frame_token_cap=frame_token_cap,
                          factory=factory)

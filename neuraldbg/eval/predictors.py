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
from dataclasses import dataclass, replace
from typing import Protocol

from neuraldbg.backends.base import BackendError, ProgressCallback, Sampling, ScoringBackend, TokenBackend
from neuraldbg.config import Settings
from neuraldbg.session.policy import ExecutionPolicy, Refused
from neuraldbg.session.session import Session
from neuraldbg.simulation.factory import EngineOptions
from neuraldbg.simulation.scoring import TraceScore, score_trace
from neuraldbg.eval.errors import EvalError
from neuraldbg.simulation.model_engine import FRAME_TOKEN_CAP
from neuraldbg.simulation.target import Target
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


class _SessionPredictor:
    """Runs through a session of its own (the one owner of runs): the
    harness's programs are not editor documents, so nothing is cached."""

    backend: str
    needs_truth: bool

    def __init__(self, settings: Settings, *, options: EngineOptions = EngineOptions(),
                 progress: ProgressCallback | None = None) -> None:
        self.session = Session(replace(settings, allow_execution=True), policy=ExecutionPolicy.command_line(),
                               workers=1, progress=progress)
        self.options = options

    def _run(self, program: Program, max_frames: int, truth: Trace | None) -> Trace:
        index, fn = _entry(program)
        target = Target(program.path, program.source, index, fn, program.call, "explicit")
        settings = replace(self.session.settings, max_frames=max_frames)
        try:
            run = self.session.open_run(target, settings, truth=truth, options=self.options)
        except Refused as exc:
            raise EvalError(str(exc)) from None
        return run.run_to_end()

    def score(self, program: Program, truth: Trace) -> TraceScore | None:
        """No model to rate the real run under (exec is the real run; replay reproduces it by construction)."""
        return None

    def close(self) -> None:
        self.session.engines.close()


class ExecPredictor(_SessionPredictor):
    """The real run, walked through the simulation (its own prediction)."""

    backend = "exec"
    model: str | None = None
    needs_truth = True

    def __init__(self, limits: Limits = Limits()) -> None:
        super().__init__(Settings(backend="exec"))
        self.limits = limits

    def predict(self, program: Program, *, max_frames: int, truth: Trace | None) -> Trace:
        return self._run(program, max_frames, truth if truth is not None else program.truth(self.limits))


class ReplayPredictor(_SessionPredictor):
    """The real run replayed as token ids through the model path."""

    backend = "replay"
    model: str | None = "replay"
    needs_truth = True

    def __init__(self, limits: Limits = Limits(), sampling: Sampling = Sampling()) -> None:
        super().__init__(Settings(backend="replay"), options=EngineOptions(sampling=sampling))
        self.limits = limits

    def predict(self, program: Program, *, max_frames: int, truth: Trace | None) -> Trace:
        return self._run(program, max_frames, truth if truth is not None else program.truth(self.limits))


class ModelPredictor(_SessionPredictor):
    """CWM (or any model) through the session's shared token backend."""

    needs_truth = False

    def __init__(self, settings: Settings, *, sampling: Sampling, frame_token_cap: int = FRAME_TOKEN_CAP,
                 progress: ProgressCallback | None = None, loaded: tuple[TokenBackend, TokenizerLike] | None = None) -> None:
        """``loaded``: a backend already in this process (else the settings' is loaded here)."""
        super().__init__(settings, options=EngineOptions(sampling=sampling, frame_token_cap=frame_token_cap),
                         progress=progress)
        self.backend = settings.backend
        if loaded is not None:
            self.session.engines.adopt(self.session.settings, *loaded)
        self.impl, self.tok = self.session.engines.backend(self.session.settings)
        self.model = self.impl.name

    def predict(self, program: Program, *, max_frames: int, truth: Trace | None) -> Trace:
        # With a real run at hand, the call frame shows the arguments as the
        # tracer (and CWM's training data) wrote them; else they are bound
        # from the call's text.
        return self._run(program, max_frames, truth)

    def score(self, program: Program, truth: Trace) -> TraceScore | None:
        if not isinstance(self.impl, ScoringBackend) or not truth.frames:
            return None
        _index, fn = _entry(program)
        return score_trace(self.impl, self.tok, source=program.source, function=fn, trace=truth)


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
    settings = Settings(backend=backend, profile=model, url=url, api_key=api_key,
                        temperature=sampling.temperature, seed=sampling.seed or 0)
    try:
        return ModelPredictor(settings, sampling=sampling, frame_token_cap=frame_token_cap, progress=progress)
    except BackendError as exc:
        raise EvalError(str(exc)) from None

"""Build the engine for a run from the settings: exec (a real run in the
sandbox), replay (a real run fed back through the model path), local or
remote (CWM). Model backends are loaded once and shared."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from neuraldbg.backends.base import BackendError, CancelToken, ProgressCallback, Sampling
from neuraldbg.config import Settings
from neuraldbg.simulation.exec_engine import ExecEngine
from neuraldbg.simulation.simulation import Engine
from neuraldbg.source.model import FunctionInfo, SourceIndex
from neuraldbg.trace.frames import Trace

if TYPE_CHECKING:
    from neuraldbg.backends.base import TokenBackend
    from neuraldbg.trace.tokenizer import TokenizerLike

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EngineOptions:
    """Overrides of what the settings say, for callers that fix them (the evaluation harness)."""

    sampling: Sampling | None = None  # the frames' sampling (default: the settings' profile plan)
    frame_token_cap: int | None = None  # tokens one frame may take (default: the sampling's max_tokens)


class EngineFactory:
    """Builds engines (only for the session, which applies the execution
    policy first) and keeps the model backends loaded."""

    def __init__(self, *, progress: ProgressCallback | None = None) -> None:
        self.progress = progress
        self._backends: dict[tuple[Any, ...], tuple["TokenBackend", "TokenizerLike"]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def real_run(settings: Settings, source: str, function: FunctionInfo, call: str, path: str, *, setup: str = "",
                 cancel: CancelToken | None = None) -> Trace:
        """The sandboxed real run of ``call`` (seconds: call off the event loop)."""
        from neuraldbg.tracer import Limits, run_trace

        limits = Limits(wall_seconds=settings.timeout_seconds, max_frames=settings.max_frames)
        return run_trace(source, call, function=function.qualname, path=path, limits=limits, setup=setup,
                         python=settings.interpreter or None, cancel=cancel)

    def make(self, settings: Settings, *, source: str, index: SourceIndex, function: FunctionInfo, call: str,
             path: str, truth: Trace | None = None, options: EngineOptions = EngineOptions(), setup: str = "",
             cancel: CancelToken | None = None) -> Engine:
        """The engine for one run. ``truth``: the real run of this input when
        already known (exec walks it, replay replays it, a model shows its
        call frame's arguments as the tracer wrote them); else exec and
        replay run the program here."""
        if settings.backend in ("exec", "replay") and truth is None:
            truth = self.real_run(settings, source, function, call, path, setup=setup, cancel=cancel)
        if settings.backend == "exec":
            assert truth is not None
            return ExecEngine(truth)
        from neuraldbg.simulation.model_engine import FRAME_TOKEN_CAP, ModelEngine
        from neuraldbg.simulation.sampling import sampling_plan

        plan = sampling_plan(settings, default_max_tokens=FRAME_TOKEN_CAP)
        frames, inputs = (options.sampling, options.sampling) if options.sampling is not None else (plan.frames, plan.inputs)
        # The real run's first frame: calling a decorated function enters its wrapper first, forced as the tracer wrote it.
        entry = truth.frames[0] if truth is not None and truth.frames and truth.frames[0].event == "call" else None
        if settings.backend == "replay":
            from neuraldbg.backends.replay import ReplayBackend
            from neuraldbg.trace.tokenizer import TextTokenizer

            assert truth is not None
            if not truth.frames:  # nothing to replay: the real run could not start (its error ends the trace)
                return ExecEngine(truth, backend="replay", model="replay", predicted=True)
            tok: TokenizerLike = TextTokenizer()
            backend: TokenBackend = ReplayBackend.for_trace(truth, tok, source=source, functions=index.functions)
        else:
            backend, tok = self.backend(settings)
        return ModelEngine(backend, tok, source=source, function=function, functions=index.functions, call=call,
                           sampling=frames, input_sampling=inputs, backend_kind=settings.backend,
                           frame_token_cap=options.frame_token_cap, entry=entry)

    def backend(self, settings: Settings) -> tuple["TokenBackend", "TokenizerLike"]:
        """The shared model backend for these settings (loaded on first use)."""
        key = self._key(settings)
        with self._lock:
            if key not in self._backends:
                self._backends[key] = self._load(settings)
            return self._backends[key]

    def adopt(self, settings: Settings, backend: "TokenBackend", tok: "TokenizerLike") -> None:
        """Use an already loaded backend for these settings (an in-process
        model built by a test, a benchmark or a host that loaded it itself)."""
        with self._lock:
            self._backends[self._key(settings)] = (backend, tok)

    def loaded(self, settings: Settings) -> "TokenBackend | None":
        """The shared backend for these settings if it is loaded (never loads)."""
        with self._lock:
            entry = self._backends.get(self._key(settings))
        return entry[0] if entry is not None else None

    @staticmethod
    def _key(settings: Settings) -> tuple[Any, ...]:
        return (settings.backend, settings.profile, settings.url, settings.api_key)

    def _load(self, settings: Settings) -> tuple["TokenBackend", "TokenizerLike"]:
        if settings.backend == "local":
            if not settings.profile:
                raise BackendError("the local backend needs a model: set neuraldbg.profile to a profile name or checkpoint folder")
            from neuraldbg.backends.local import LocalBackend

            backend = LocalBackend.load(settings.profile, progress=self.progress)
            return backend, backend.tokenizer
        if settings.backend == "remote":
            from neuraldbg.backends.remote import remote_backend

            # A remote profile (models/vllm-remote.toml ...) gives the url, served model, stop ids and key variable.
            remote = remote_backend(settings.profile, url=settings.url, api_key=settings.api_key)
            return remote, remote.tokenizer
        raise BackendError(f"unknown backend {settings.backend!r}")

    def close(self) -> None:
        with self._lock:
            for backend, _tok in self._backends.values():
                try:
                    backend.close()
                except Exception:  # closing must not raise at shutdown
                    log.exception("closing backend failed")
            self._backends.clear()

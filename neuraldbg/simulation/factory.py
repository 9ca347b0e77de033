"""Build the engine for a trace from the settings: exec (a real run in the
sandbox), replay (a real run fed back through the model path), local or
remote (CWM). Model backends are loaded once and shared."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from neuraldbg.backends.base import BackendError, CancelToken, ProgressCallback
from neuraldbg.config import Settings
from neuraldbg.simulation.simulation import Engine
from neuraldbg.source.model import FunctionInfo, SourceIndex

if TYPE_CHECKING:
    from neuraldbg.backends.base import TokenBackend
    from neuraldbg.trace.tokenizer import TokenizerLike

log = logging.getLogger(__name__)


class ExecutionNotAllowed(BackendError):
    pass


class EngineFactory:
    def __init__(self, *, progress: ProgressCallback | None = None, require_permission: bool = True) -> None:
        # The CLI runs what the user asked for; the language server must be
        # told that the workspace may execute code.
        self.require_permission = require_permission
        self.progress = progress
        self._backends: dict[tuple[Any, ...], tuple["TokenBackend", "TokenizerLike"]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def imagines_inputs(settings: Settings) -> bool:
        return settings.backend in ("local", "remote")

    def _check_exec(self, settings: Settings) -> None:
        if self.require_permission and not settings.allow_execution:
            raise ExecutionNotAllowed(
                "running code is not allowed in this workspace: enable the setting neuraldbg.allowExecution "
                "(trusted workspaces only) or use a model backend"
            )

    def _truth(self, settings: Settings, source: str, function: FunctionInfo, call: str, path: str):
        from neuraldbg.tracer import Limits, run_trace

        self._check_exec(settings)
        limits = Limits(wall_seconds=settings.timeout_seconds, max_frames=settings.max_frames)
        return run_trace(source, call, function=function.qualname, path=path, limits=limits)

    def make(self, settings: Settings, *, source: str, index: SourceIndex, function: FunctionInfo, call: str,
             path: str, cancel: CancelToken | None = None) -> Engine:
        if settings.backend == "exec":
            from neuraldbg.simulation.exec_engine import ExecEngine

            return ExecEngine(self._truth(settings, source, function, call, path))
        from neuraldbg.simulation.model_engine import FRAME_TOKEN_CAP, ModelEngine
        from neuraldbg.simulation.sampling import sampling_plan

        plan = sampling_plan(settings, default_max_tokens=FRAME_TOKEN_CAP)
        if settings.backend == "replay":
            from neuraldbg.backends.replay import ReplayBackend
            from neuraldbg.trace.tokenizer import TextTokenizer

            truth = self._truth(settings, source, function, call, path)
            tok = TextTokenizer()
            backend = ReplayBackend.for_trace(truth, tok, source=source, functions=index.functions)
            call_locals = dict(truth.frames[0].locals) if truth.frames else None
            return ModelEngine(backend, tok, source=source, function=function, functions=index.functions, call=call,
                               sampling=plan.frames, input_sampling=plan.inputs, backend_kind="replay",
                               call_locals=call_locals)
        backend, tok = self.backend(settings)
        return ModelEngine(backend, tok, source=source, function=function, functions=index.functions, call=call,
                           sampling=plan.frames, input_sampling=plan.inputs, backend_kind=settings.backend)

    def backend(self, settings: Settings) -> tuple["TokenBackend", "TokenizerLike"]:
        """The shared model backend for these settings (loaded on first use)."""
        key = self._key(settings)
        with self._lock:
            if key not in self._backends:
                self._backends[key] = self._load(settings)
            return self._backends[key]

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
            if not settings.url:
                raise BackendError("the remote backend needs neuraldbg.url (e.g. http://gpu-host:8000)")
            from neuraldbg.backends.remote import RemoteBackend

            remote = RemoteBackend(settings.url, api_key=settings.api_key or None)
            tok = getattr(remote, "tokenizer", None)
            if tok is None:
                raise BackendError("the remote backend needs CWM's tokenizer locally to send token ids")
            return remote, tok
        raise BackendError(f"unknown backend {settings.backend!r}")

    def close(self) -> None:
        with self._lock:
            for backend, _tok in self._backends.values():
                try:
                    backend.close()
                except Exception:  # closing must not raise at shutdown
                    log.exception("closing backend failed")
            self._backends.clear()

"""What the language server holds between requests, and nothing it does:
the Session (documents, trace cache, settings), the trace selection, what
the client supports, the debug registry, divergences found by "Verify",
and the outbound channels (status, progress bars, refreshes).

Feature modules (``neuraldbg.server.features``) read and update this; none
imports another's internals.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from lsprotocol import types
from pygls.capabilities import ServerCapabilitiesBuilder, get_capability

from neuraldbg.config import Settings
from neuraldbg.server.convert import uri_to_path
from neuraldbg.server.diagnostics import Problem
from neuraldbg.server.documents import Documents
from neuraldbg.server.fills import FillService
from neuraldbg.server.notify import STATUS_METHOD, ProgressBars, StatusReporter, cached_tokens_note, model_name, sandbox_status
from neuraldbg.server.refresh import Refresh
from neuraldbg.session.registry import DebugRegistry
from neuraldbg.session.selection import TraceSelection
from neuraldbg.session.session import Session

log = logging.getLogger(__name__)

LoadListener = Callable[[Any], None]  # a model-load progress report, on the loop


@dataclass(frozen=True)
class ClientInfo:
    encoding: str = "utf-16"
    inlay_refresh: bool = False
    code_lens_refresh: bool = False
    inline_value_refresh: bool = False
    progress: bool = False
    configuration: bool = False
    markdown: bool = True
    disabled_actions: bool = False

    @staticmethod
    def from_capabilities(caps: types.ClientCapabilities) -> "ClientInfo":
        enc = ServerCapabilitiesBuilder.choose_position_encoding(caps)
        formats = get_capability(caps, "text_document.hover.content_format", None) or [types.MarkupKind.Markdown]
        return ClientInfo(
            encoding=str(getattr(enc, "value", enc)),
            inlay_refresh=bool(get_capability(caps, "workspace.inlay_hint.refresh_support", False)),
            code_lens_refresh=bool(get_capability(caps, "workspace.code_lens.refresh_support", False)),
            inline_value_refresh=bool(get_capability(caps, "workspace.inline_value.refresh_support", False)),
            progress=bool(get_capability(caps, "window.work_done_progress", False)),
            configuration=bool(get_capability(caps, "workspace.configuration", False)),
            markdown=types.MarkupKind.Markdown in formats,
            disabled_actions=bool(get_capability(caps, "text_document.code_action.disabled_support", False)),
        )

    def refreshes(self, kind: str) -> bool:
        return {"inlay": self.inlay_refresh, "lens": self.code_lens_refresh,
                "inline_value": self.inline_value_refresh}.get(kind, False)


@dataclass
class AdapterHandle:
    """The in-process debug adapter, once started (``neuraldbg/debugAdapter``)."""

    port: int | None = None
    stop: Callable[[], None] | None = None


class ServerState:
    def __init__(self, server: Any) -> None:
        self.server = server  # pygls LanguageServer (or a test double with the methods used)
        self.loop: asyncio.AbstractEventLoop | None = None  # set once initialized
        self.registry = DebugRegistry()
        self.load_listeners: list[LoadListener] = []
        self.session = Session(Settings(), progress=self._load_progress_threadsafe)
        self.selection = TraceSelection(self.session)
        self.documents = Documents(self.session)
        self.client = ClientInfo()
        self.init_options: Any = None
        self.divergences: dict[str, dict[str, Problem]] = {}  # uri -> function -> "Verify" result
        self.fills = FillService(self.session, uri_to_path)
        self.adapter = AdapterHandle()
        self.status = StatusReporter(
            send=lambda payload: self.server.protocol.notify(STATUS_METHOD, payload),
            queue=lambda: self.session.queue_length, backend=lambda: self.settings.backend,
            model=lambda: model_name(self.settings),
            note=lambda: cached_tokens_note(self.session.engines.loaded(self.settings)),
            sandbox=lambda: sandbox_status(self.settings))
        self.bars = ProgressBars(server, supported=lambda: self.client.progress)
        self.refresh = Refresh(server, supports=lambda kind: self.client.refreshes(kind))
        self.weak_sandbox_told = False
        self.shut = False
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def settings(self) -> Settings:
        return self.session.settings

    @property
    def encoding(self) -> str:
        return self.client.encoding

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """A background task of the server (cancelled at shutdown, its failure logged)."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def cancel_tasks(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task failed: %s", task.exception(), exc_info=task.exception())

    def log_to_client(self, message: str, kind: types.MessageType = types.MessageType.Warning) -> None:
        log.log(logging.WARNING if kind <= types.MessageType.Warning else logging.INFO, "%s", message)
        try:
            self.server.window_log_message(types.LogMessageParams(type=kind, message=f"neuraldbg: {message}"))
        except Exception:
            log.debug("log message not sent", exc_info=True)

    def _load_progress_threadsafe(self, progress: Any) -> None:
        # called from the thread that loads the model
        loop = self.loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._load_progress, progress)

    def _load_progress(self, progress: Any) -> None:
        for listener in list(self.load_listeners):
            listener(progress)

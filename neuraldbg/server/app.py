"""The pygls server: feature registration only (the work is in controller.py)."""

from __future__ import annotations

import logging
import time
from typing import Any

from lsprotocol import types
from pygls.exceptions import FeatureRequestError
from pygls.lsp.server import LanguageServer

from neuraldbg import __version__
from neuraldbg.server.controller import Controller
from neuraldbg.server.lenses import CMD_RESAMPLE, CMD_SET_ENTRY, CMD_SIMULATE, CMD_VERIFY
from neuraldbg.server.protocol import NeuralDbgProtocol, converter_factory

log = logging.getLogger(__name__)

TRACE_METHOD = "neuraldbg/trace"
SET_ENTRY_METHOD = "neuraldbg/setEntry"
DEBUG_ADAPTER_METHOD = "neuraldbg/debugAdapter"


class NeuralDbgServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("neuraldbg", __version__, protocol_cls=NeuralDbgProtocol, converter_factory=converter_factory,
                         text_document_sync_kind=types.TextDocumentSyncKind.Incremental)
        self.controller = Controller(self)
        self._last_error_report = 0.0
        self._suppressed = 0

    def report_server_error(self, error: Exception, source: Any) -> None:
        """Errors go to stderr and, at most every 5 s, to window/logMessage:
        never a message box per failing request (the pygls default)."""
        if source is FeatureRequestError:
            # the client got this one as the request's error answer already
            log.info("request failed: %s", error)
            return
        log.error("server error (%s): %s", getattr(source, "__name__", source), error)
        now = time.monotonic()
        if now - self._last_error_report < 5.0:
            self._suppressed += 1
            return
        self._last_error_report = now
        extra = f" (and {self._suppressed} more)" if self._suppressed else ""
        self._suppressed = 0
        try:
            self.window_log_message(types.LogMessageParams(type=types.MessageType.Error,
                                                           message=f"neuraldbg: {error}{extra}"))
        except Exception:
            log.debug("error report not sent", exc_info=True)

    def shutdown(self) -> None:
        # the connection ended (exit, or the client went away): stop trace work
        # so that the process can exit without waiting for it
        c = self.controller
        for entry in list(c.session.entries.values()):
            entry.cancel.cancel()
        c.fills.shutdown()
        c.session._pool.shutdown(wait=False, cancel_futures=True)
        super().shutdown()


def create_server() -> NeuralDbgServer:
    server = NeuralDbgServer()
    c = server.controller

    @server.feature(types.INITIALIZE)
    def initialize(params: types.InitializeParams) -> None:
        c.initialize(params)

    @server.feature(types.INITIALIZED)
    async def initialized(params: types.InitializedParams) -> None:
        await c.initialized()

    @server.feature(types.SHUTDOWN)
    async def shutdown(params: Any) -> None:
        await c.shutdown()

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    async def did_change_configuration(params: types.DidChangeConfigurationParams) -> None:
        pushed = params.settings
        if isinstance(pushed, dict) and isinstance(pushed.get("neuraldbg"), dict):
            pushed = pushed["neuraldbg"]
        await c.reload_configuration(pushed)

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(params: types.DidOpenTextDocumentParams) -> None:
        c.did_open(params)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(params: types.DidChangeTextDocumentParams) -> None:
        c.did_change(params)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(params: types.DidCloseTextDocumentParams) -> None:
        c.did_close(params)

    @server.feature(types.TEXT_DOCUMENT_HOVER)
    async def hover(params: types.HoverParams) -> types.Hover | None:
        return await c.hover(params)

    @server.feature(types.TEXT_DOCUMENT_INLAY_HINT, types.InlayHintOptions(resolve_provider=False))
    async def inlay_hint(params: types.InlayHintParams) -> list[types.InlayHint]:
        return await c.inlay_hints(params)

    @server.feature(types.TEXT_DOCUMENT_INLINE_VALUE)
    async def inline_value(params: types.InlineValueParams) -> list[types.InlineValue]:
        return await c.inline_values(params)

    @server.feature(types.TEXT_DOCUMENT_CODE_LENS, types.CodeLensOptions(resolve_provider=False))
    async def code_lens(params: types.CodeLensParams) -> list[types.CodeLens]:
        return await c.code_lenses(params)

    @server.feature(types.TEXT_DOCUMENT_CODE_ACTION,
                    types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.QuickFix], resolve_provider=False))
    async def code_action(params: types.CodeActionParams) -> list[types.CodeAction]:
        return await c.holes.code_actions(params)

    @server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
    async def inline_completion(params: types.InlineCompletionParams) -> types.InlineCompletionList | None:
        return await c.holes.inline_completion(params)

    @server.feature(TRACE_METHOD)
    async def trace(params: Any) -> dict[str, Any]:
        return await c.requests.trace_request(params)

    @server.feature(SET_ENTRY_METHOD)
    async def set_entry(params: Any) -> dict[str, Any]:
        return await c.requests.set_entry_request(params)

    @server.feature(DEBUG_ADAPTER_METHOD)
    async def debug_adapter(params: Any) -> dict[str, Any]:
        return await c.requests.debug_adapter(params)

    async def simulate(ls: NeuralDbgServer, *args: Any) -> dict[str, Any]:
        return await c.requests.cmd_simulate(list(args))

    async def resample(ls: NeuralDbgServer, *args: Any) -> dict[str, Any]:
        return await c.requests.cmd_resample(list(args))

    # the aliases are the ids the VS Code palette commands forward under
    for name in (CMD_SIMULATE, "neuraldbg.simulateFunction"):
        server.command(name)(simulate)
    for name in (CMD_RESAMPLE, "neuraldbg.resampleInput"):
        server.command(name)(resample)

    @server.command(CMD_VERIFY)
    async def verify(ls: NeuralDbgServer, *args: Any) -> dict[str, Any]:
        return await c.requests.cmd_verify(list(args))

    @server.command(CMD_SET_ENTRY)
    async def set_entry_command(ls: NeuralDbgServer, *args: Any) -> dict[str, Any]:
        return await c.requests.cmd_set_entry(list(args))

    return server

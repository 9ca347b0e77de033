"""The pygls server: feature registration only. Each handler passes its
params with the :class:`~neuraldbg.server.state.ServerState` to one feature
module (``neuraldbg.server.features``); ``wiring.connect`` builds the state."""

from __future__ import annotations

import logging
import time
from typing import Any

from lsprotocol import types
from pygls.exceptions import FeatureRequestError, JsonRpcException
from pygls.lsp.server import LanguageServer

from neuraldbg import __version__
from neuraldbg.server.features import (
    code_actions,
    code_lenses,
    commands,
    debug_adapter,
    hover,
    inlay_hints,
    inline_values,
    lifecycle,
    text_sync,
)
from neuraldbg.server.lenses import CMD_RESAMPLE, CMD_SET_ENTRY, CMD_SIMULATE, CMD_VERIFY
from neuraldbg.server.protocol import NeuralDbgProtocol, converter_factory
from neuraldbg.server.state import ServerState
from neuraldbg.server.wiring import connect

log = logging.getLogger(__name__)

TRACE_METHOD = "neuraldbg/trace"
SET_ENTRY_METHOD = "neuraldbg/setEntry"
DEBUG_ADAPTER_METHOD = "neuraldbg/debugAdapter"


class NeuralDbgServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("neuraldbg", __version__, protocol_cls=NeuralDbgProtocol, converter_factory=converter_factory,
                         text_document_sync_kind=types.TextDocumentSyncKind.Incremental)
        self.state = connect(self)
        if isinstance(self.protocol, NeuralDbgProtocol):  # a didChange that could not be read marks its document stale
            self.protocol.on_lost_change.append(self.state.documents.lost_change)
        self._last_error_report = 0.0
        self._suppressed = 0

    def report_server_error(self, error: Exception, source: Any) -> None:
        """Errors go to stderr and, at most every 5 s, to window/logMessage:
        never a message box per failing request (the pygls default).
        A message body the reader could not decode gets its Parse error answer."""
        if source is JsonRpcException and isinstance(self.protocol, NeuralDbgProtocol) and self.protocol.answer_unreadable(error):
            return
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
        _stop_work(self.state)
        super().shutdown()


def _stop_work(state: ServerState) -> None:
    """Stop the trace and fill work without the event loop (gone when the connection ends)."""
    state.session.stop_now()
    state.fills.shutdown()


def create_server() -> NeuralDbgServer:
    server = NeuralDbgServer()
    st = server.state

    @server.feature(types.INITIALIZE)
    def initialize(params: types.InitializeParams) -> None:
        lifecycle.initialize(st, params)

    @server.feature(types.INITIALIZED)
    async def initialized(params: types.InitializedParams) -> None:
        await lifecycle.initialized(st)

    @server.feature(types.SHUTDOWN)
    async def shutdown(params: Any) -> None:
        inputs.close()  # a running input search stops (its children are killed) instead of holding the exit
        await lifecycle.shutdown(st)

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    async def did_change_configuration(params: types.DidChangeConfigurationParams) -> None:
        await lifecycle.did_change_configuration(st, params)

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(params: types.DidOpenTextDocumentParams) -> None:
        text_sync.did_open(st, params)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(params: types.DidChangeTextDocumentParams) -> None:
        text_sync.did_change(st, params)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(params: types.DidCloseTextDocumentParams) -> None:
        text_sync.did_close(st, params)

    @server.feature(types.TEXT_DOCUMENT_HOVER)
    async def text_document_hover(params: types.HoverParams) -> types.Hover | None:
        return await hover.hover(st, params)

    @server.feature(types.TEXT_DOCUMENT_INLAY_HINT, types.InlayHintOptions(resolve_provider=False))
    async def inlay_hint(params: types.InlayHintParams) -> list[types.InlayHint]:
        return await inlay_hints.inlay_hints(st, params)

    @server.feature(types.TEXT_DOCUMENT_INLINE_VALUE)
    async def inline_value(params: types.InlineValueParams) -> list[types.InlineValue]:
        return await inline_values.inline_values(st, params)

    from neuraldbg.server.features.find_inputs import CMD_FIND_INPUTS, FIND_INPUTS_METHOD, FindInputs

    inputs = FindInputs(st)  # inverse execution: neuraldbg/findInputs, its actions and lenses

    @server.feature(types.TEXT_DOCUMENT_CODE_LENS, types.CodeLensOptions(resolve_provider=False))
    async def code_lens(params: types.CodeLensParams) -> list[types.CodeLens]:
        return [*await code_lenses.code_lenses(st, params), *await inputs.code_lenses(params)]

    @server.feature(types.TEXT_DOCUMENT_CODE_ACTION,
                    types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.QuickFix, types.CodeActionKind.Refactor],
                                            resolve_provider=False))
    async def code_action(params: types.CodeActionParams) -> list[types.CodeAction]:
        return [*await code_actions.code_actions(st, params), *await inputs.code_actions(params)]

    @server.feature(FIND_INPUTS_METHOD)
    async def find_inputs_request(params: Any) -> dict[str, Any]:
        return await inputs.request(params)

    @server.command(CMD_FIND_INPUTS)
    async def find_inputs_command(ls: NeuralDbgServer, *args: Any) -> dict[str, Any]:
        return await inputs.command(list(args))

    @server.feature(types.WINDOW_WORK_DONE_PROGRESS_CANCEL)
    def cancel_progress(params: types.WorkDoneProgressCancelParams) -> None:
        st.bars.cancel(str(params.token))

    @server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
    async def inline_completion(params: types.InlineCompletionParams) -> types.InlineCompletionList | None:
        return await code_actions.inline_completion(st, params)

    @server.feature(TRACE_METHOD)
    async def trace(params: Any) -> dict[str, Any]:
        return await commands.trace_request(st, params)

    @server.feature(SET_ENTRY_METHOD)
    async def set_entry(params: Any) -> dict[str, Any]:
        return await commands.set_entry_request(st, params)

    @server.feature(DEBUG_ADAPTER_METHOD)
    async def debug_adapter_request(params: Any) -> dict[str, Any]:
        return await debug_adapter.debug_adapter(st, params)

    async def simulate(ls: NeuralDbgServer, *args: Any) -> dict[str, Any]:
        return await commands.simulate(st, list(args))

    async def resample(ls: NeuralDbgServer, *args: Any) -> dict[str, Any]:
        return await commands.resample(st, list(args))

    # the aliases are the ids the VS Code palette commands forward under
    for name in (CMD_SIMULATE, "neuraldbg.simulateFunction"):
        server.command(name)(simulate)
    for name in (CMD_RESAMPLE, "neuraldbg.resampleInput"):
        server.command(name)(resample)

    @server.command(CMD_VERIFY)
    async def verify(ls: NeuralDbgServer, *args: Any) -> dict[str, Any]:
        return await commands.verify(st, list(args))

    @server.command(CMD_SET_ENTRY)
    async def set_entry_command(ls: NeuralDbgServer, *args: Any) -> dict[str, Any]:
        return await commands.set_entry_command(st, list(args))

    return server

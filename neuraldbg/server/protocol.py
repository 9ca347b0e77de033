"""pygls protocol tweaks for neuraldbg.

* Documents live in the Session (incremental tree-sitter index); pygls's own
  copy would re-split every line of the text on every change, so its text
  sync handlers only forward to ours.
* A request whose params do not deserialize gets a JSON-RPC InvalidParams
  error answer (pygls would only log it, leaving the client waiting).
* inlineCompletionProvider is advertised only to clients that declare
  textDocument.inlineCompletion.
* Custom methods' params stay plain JSON (dicts), not namedtuples.
"""

from __future__ import annotations

import logging
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import cattrs
from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams
from pygls.protocol import (
    JsonRPCNotification,
    JsonRPCRequestMessage,
    JsonRPCResponseMessage,
    LanguageServerProtocol,
    default_converter,
    lsp_method,
)

log = logging.getLogger(__name__)


def converter_factory() -> cattrs.Converter:
    conv = default_converter()

    def keep(obj: dict[str, Any], cls: type) -> Any:
        return cls(**obj)

    def request(obj: dict[str, Any], cls: type) -> Any:
        return cls(id=obj.get("id"), method=obj.get("method", ""), jsonrpc=obj.get("jsonrpc", "2.0"), params=obj.get("params"))

    def notification(obj: dict[str, Any], cls: type) -> Any:
        return cls(method=obj.get("method", ""), jsonrpc=obj.get("jsonrpc", "2.0"), params=obj.get("params"))

    conv.register_structure_hook(JsonRPCRequestMessage, request)
    conv.register_structure_hook(JsonRPCNotification, notification)
    conv.register_structure_hook(JsonRPCResponseMessage, keep)
    return conv


@dataclass
class BadRequest:
    """A request that could not be deserialized; answered with ``error``."""

    id: Any
    method: str
    error: JsonRpcException
    jsonrpc: str = "2.0"


class NeuralDbgProtocol(LanguageServerProtocol):
    def structure_message(self, data: dict[str, Any]) -> Any:
        try:
            return super().structure_message(data)
        except JsonRpcException:
            if isinstance(data, dict) and "id" in data and "method" in data:
                method = str(data.get("method"))
                return BadRequest(data["id"], method, JsonRpcInvalidParams(f"invalid params for {method}"))
            raise

    def handle_message(self, message: Any) -> None:
        if isinstance(message, BadRequest):
            log.warning("invalid params for %s (request %s)", message.method, message.id)
            self._send_response(message.id, error=message.error.to_response_error())
            return
        super().handle_message(message)

    @lsp_method(types.INITIALIZE)
    def lsp_initialize(self, params: types.InitializeParams) -> Generator[Any, Any, types.InitializeResult]:
        result = yield from super().lsp_initialize(params)
        caps = params.capabilities.text_document
        if caps is None or caps.inline_completion is None:
            result.capabilities.inline_completion_provider = None
        return result

    @lsp_method(types.TEXT_DOCUMENT_DID_OPEN)
    def lsp_text_document__did_open(self, params: types.DidOpenTextDocumentParams) -> Generator[Any, Any, None]:
        if (handler := self.fm.features.get(types.TEXT_DOCUMENT_DID_OPEN)) is not None:
            yield handler, (params,), None

    @lsp_method(types.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(self, params: types.DidChangeTextDocumentParams) -> Generator[Any, Any, None]:
        if (handler := self.fm.features.get(types.TEXT_DOCUMENT_DID_CHANGE)) is not None:
            yield handler, (params,), None

    @lsp_method(types.TEXT_DOCUMENT_DID_CLOSE)
    def lsp_text_document__did_close(self, params: types.DidCloseTextDocumentParams) -> Generator[Any, Any, None]:
        if (handler := self.fm.features.get(types.TEXT_DOCUMENT_DID_CLOSE)) is not None:
            yield handler, (params,), None

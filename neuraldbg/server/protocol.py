"""pygls protocol tweaks for neuraldbg.

* Documents live in the Session (incremental tree-sitter index); pygls's own
  copy would re-split every line of the text on every change, so its text
  sync handlers only forward to ours.
* A request whose params do not deserialize gets a JSON-RPC InvalidParams
  error answer (pygls would only log it, leaving the client waiting).
* inlineCompletionProvider is advertised only to clients that declare
  textDocument.inlineCompletion.
* Custom methods' params stay plain JSON (dicts), not namedtuples.
* A message body that cannot be read (not UTF-8, not JSON) gets the
  JSON-RPC Parse error (-32700, id null) pygls does not send; when it was, or
  may have been, a didChange, the documents it may have changed are marked
  as needing a full resync (``on_lost_change``) and the client is told.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

import cattrs
from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams, JsonRpcParseError
from pygls.protocol import (
    JsonRPCNotification,
    JsonRPCRequestMessage,
    JsonRPCResponseMessage,
    LanguageServerProtocol,
    default_converter,
    lsp_method,
)

log = logging.getLogger(__name__)

# A document (None: any open one) may have missed a change; returns the open documents it marked.
LostChangeHook = Callable[[str | None], list[str]]
_METHOD_RE = re.compile(rb'"method"\s*:\s*"([^"\\]*)"')
_URI_RE = re.compile(rb'"uri"\s*:\s*"([^"\\]*)"')


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


@dataclass(frozen=True)
class UnreadableMessage:
    """What the bytes of a body that could not be read seem to say."""

    method: str | None  # None: not even that
    uri: str | None  # the textDocument's, when one shows

    @property
    def may_change_document(self) -> bool:
        return self.method is None or self.method == types.TEXT_DOCUMENT_DID_CHANGE


def unreadable_body(error: Exception) -> bytes | None:
    """The body pygls's reader failed on, when ``error`` is its decoding
    failure (json.loads decodes the bytes before it parses them)."""
    if isinstance(error, UnicodeDecodeError) and isinstance(error.object, bytes):
        return error.object
    if isinstance(error, json.JSONDecodeError):
        return error.doc.encode("utf-8", "surrogatepass")
    return None


def guess_message(body: bytes) -> UnreadableMessage:
    """The method and document of an unreadable body: its text with the bad
    bytes replaced, parsed if that parses, else the first method/uri seen."""
    try:
        data = json.loads(body.decode("utf-8", "replace"))
    except ValueError:
        data = None
    if isinstance(data, dict):
        params = data.get("params")
        doc = params.get("textDocument") if isinstance(params, dict) else None
        uri = doc.get("uri") if isinstance(doc, dict) else None
        method = data.get("method")
        return UnreadableMessage(method if isinstance(method, str) else None, uri if isinstance(uri, str) else None)
    found = [m.group(1).decode("utf-8", "replace") if m else None for m in (_METHOD_RE.search(body), _URI_RE.search(body))]
    return UnreadableMessage(found[0], found[1])


class NeuralDbgProtocol(LanguageServerProtocol):
    def __init__(self, server: Any, converter: cattrs.Converter) -> None:
        super().__init__(server, converter)
        self.on_lost_change: list[LostChangeHook] = []

    def answer_unreadable(self, error: Exception) -> bool:
        """Answer a body the reader could not decode or parse with a Parse
        error (id null: nothing in it can be trusted), keep the documents it
        may have changed from being used as they are, and tell the client.
        False when ``error`` is not such a failure."""
        body = unreadable_body(error)
        if body is None:
            return False
        why = "not UTF-8" if isinstance(error, UnicodeDecodeError) else "not JSON"
        log.warning("unreadable message body (%s, %d bytes): answered with a parse error", why, len(body))
        # written as a dict: pygls's converter would leave the null id out, and JSON-RPC requires it
        parse_error = JsonRpcParseError(f"the message body is {why}: {error}")
        self._send_data({"jsonrpc": self.VERSION, "id": None, "error": {"code": parse_error.code, "message": parse_error.message}})
        guess = guess_message(body)
        if not guess.may_change_document:
            return True
        marked = [uri for hook in self.on_lost_change for uri in hook(guess.uri)]
        if marked:
            what = guess.method or "a message that may have been a document change"
            self.notify(types.WINDOW_LOG_MESSAGE, types.LogMessageParams(
                type=types.MessageType.Warning,
                message=f"neuraldbg: {what} from the editor could not be read ({why}); "
                        f"{', '.join(marked)} may be out of date and {'is' if len(marked) == 1 else 'are'} not used "
                        "until the editor sends the full text (reopen the file)"))
        return True

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

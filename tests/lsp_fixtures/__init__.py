"""Helpers for the language-server tests: a pytest-lsp client whose custom
results stay plain JSON, document helpers, and expected values computed
from the ground-truth tracer (independently of the server's code)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.protocol import JsonRPCNotification, JsonRPCRequestMessage, JsonRPCResponseMessage, default_converter
from pytest_lsp import LanguageClient, client_capabilities
from pytest_lsp.client import register_lsp_features

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
SERVER_COMMAND = [sys.executable, "-m", "neuraldbg.server"]


def _converter():
    conv = default_converter()
    conv.register_structure_hook(JsonRPCRequestMessage, lambda o, c: c(id=o.get("id"), method=o["method"], jsonrpc=o["jsonrpc"], params=o.get("params")))
    conv.register_structure_hook(JsonRPCNotification, lambda o, c: c(method=o["method"], jsonrpc=o["jsonrpc"], params=o.get("params")))
    conv.register_structure_hook(JsonRPCResponseMessage, lambda o, c: c(**o))
    return conv


def make_client() -> LanguageClient:
    """pytest-lsp's client, keeping custom params/results as dicts, and
    recording neuraldbg/status notifications and refresh requests."""
    client = LanguageClient(converter_factory=_converter)
    register_lsp_features(client)
    client.statuses = []  # type: ignore[attr-defined]
    client.inlay_refreshes = 0  # type: ignore[attr-defined]

    @client.feature("neuraldbg/status")
    def status(params: Any) -> None:
        client.statuses.append(params)  # type: ignore[attr-defined]

    @client.feature(types.WORKSPACE_INLAY_HINT_REFRESH)
    def inlay_refresh(params: Any) -> None:
        client.inlay_refreshes += 1  # type: ignore[attr-defined]

    @client.feature(types.WORKSPACE_CODE_LENS_REFRESH)
    def lens_refresh(params: Any) -> None:
        return None

    return client


async def start(client: LanguageClient, editor: str, settings: dict[str, Any] | None, root: Path) -> types.InitializeResult:
    """initialize + initialized with an editor's real capabilities; settings
    go both in initializationOptions and in workspace/configuration."""
    if settings is not None:
        client.set_configuration(settings, section="neuraldbg")
    return await client.initialize_session(types.InitializeParams(
        capabilities=client_capabilities(editor),
        root_uri=root.as_uri(),
        workspace_folders=[types.WorkspaceFolder(uri=root.as_uri(), name=root.name)],
        initialization_options=settings,
    ))


def open_doc(client: LanguageClient, path: Path, text: str | None = None) -> str:
    uri = path.as_uri()
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        text_document=types.TextDocumentItem(uri=uri, language_id="python", version=1,
                                             text=path.read_text() if text is None else text)))
    return uri


def hover_text(result: types.Hover | None) -> str:
    if result is None:
        return ""
    contents = result.contents
    return contents.value if isinstance(contents, types.MarkupContent) else str(contents)


async def wait_until(predicate, timeout: float = 20.0, interval: float = 0.05) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate():
        if loop.time() > end:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)

"""A message body that is not UTF-8, written to the real server process
(``python -m neuraldbg serve``) by a raw stdio client: it gets the JSON-RPC
Parse error (-32700, id null) and the next request works; a document change
lost that way leaves the document stale (position requests get nothing,
the client is told) until the full text comes again."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any, Callable

import pytest

from lsp_fixtures import RawConnection

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(120)]

SOURCE = '''\
def f(n):
    """
    >>> f(3)
    3
    """
    total = 0
    for i in range(n):
        total += i
    return total
'''
TOTAL_LINE = 7  # 0-based line of `total += i`


def send_body(conn: RawConnection, body: bytes) -> None:
    assert conn.proc.stdin is not None
    conn.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)


async def until(conn: RawConnection, wanted: Callable[[dict[str, Any]], bool], seen: list[dict[str, Any]],
                timeout: float = 30.0) -> dict[str, Any]:
    """The first message from the server that ``wanted`` accepts; every one read goes to ``seen``."""
    async def wait() -> dict[str, Any]:
        while True:
            msg = await conn.receive()
            seen.append(msg)
            if wanted(msg):
                return msg

    return await asyncio.wait_for(wait(), timeout)


def is_parse_error(msg: dict[str, Any]) -> bool:
    return "method" not in msg and msg.get("error", {}).get("code") == -32700


async def started(tmp_path: Path) -> tuple[RawConnection, str]:
    conn = await RawConnection.start()
    conn.send({"id": 1, "method": "initialize", "params": {
        "processId": os.getpid(), "capabilities": {}, "rootUri": tmp_path.as_uri(),
        "initializationOptions": {"allowExecution": True, "backend": "exec"}}})
    assert "capabilities" in (await conn.response(1))["result"]
    conn.send({"method": "initialized", "params": {}})
    return conn, (tmp_path / "loop.py").as_uri()


def hover(conn: RawConnection, msg_id: int, uri: str, line: int, character: int) -> None:
    conn.send({"id": msg_id, "method": "textDocument/hover",
               "params": {"textDocument": {"uri": uri}, "position": {"line": line, "character": character}}})


def change(uri: str, version: int, *changes: dict[str, Any]) -> dict[str, Any]:
    return {"method": "textDocument/didChange",
            "params": {"textDocument": {"uri": uri, "version": version}, "contentChanges": list(changes)}}


def latin1_body(msg: dict[str, Any]) -> bytes:
    """``msg`` as JSON with its non-ASCII characters written as Latin-1 bytes: not UTF-8."""
    body = json.dumps({"jsonrpc": "2.0", **msg}, ensure_ascii=False).encode("latin-1")
    with pytest.raises(UnicodeDecodeError):
        body.decode("utf-8")
    return body


async def test_a_body_that_is_not_utf8_gets_a_parse_error_and_the_next_request_works(tmp_path: Path) -> None:
    conn, uri = await started(tmp_path)
    try:
        seen: list[dict[str, Any]] = []
        send_body(conn, latin1_body({"id": 2, "method": "textDocument/hover", "params": {
            "textDocument": {"uri": uri + "?caf\u00e9"}, "position": {"line": 0, "character": 0}}}))
        answer = await until(conn, is_parse_error, seen)
        assert "id" in answer and answer["id"] is None
        assert "not UTF-8" in answer["error"]["message"]
        send_body(conn, b'{"jsonrpc": "2.0", "id": 3, "method": ')  # UTF-8, but not JSON: the same answer
        answer = await until(conn, is_parse_error, seen)
        assert answer["id"] is None and "not JSON" in answer["error"]["message"]
        conn.send({"method": "textDocument/didOpen", "params": {"textDocument": {
            "uri": uri, "languageId": "python", "version": 1, "text": SOURCE}}})
        hover(conn, 3, uri, TOTAL_LINE, 9)
        value = (await conn.response(3))["result"]["contents"]["value"]
        assert "**total** · line 8" in value and "total: 0 → 1 → 3" in value
        # a hover is not a document change: nothing was marked stale, nothing to tell
        assert not [m for m in seen if m.get("method") == "window/logMessage" and uri in m["params"]["message"]]
    finally:
        await conn.stop()


@pytest.mark.parametrize("repair", ["full-text change", "reopen"])
async def test_a_change_lost_that_way_is_recovered_by_the_full_text(tmp_path: Path, repair: str) -> None:
    conn, uri = await started(tmp_path)
    try:
        conn.send({"method": "textDocument/didOpen", "params": {"textDocument": {
            "uri": uri, "languageId": "python", "version": 1, "text": SOURCE}}})
        seen: list[dict[str, Any]] = []
        comment = "# caf\u00e9\n"
        insert = {"range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}}, "text": comment}
        send_body(conn, latin1_body(change(uri, 2, insert)))
        answer = await until(conn, is_parse_error, seen)
        assert answer["id"] is None
        told = await until(conn, lambda m: m.get("method") == "window/logMessage" and uri in m["params"]["message"], seen)
        assert "could not be read" in told["params"]["message"]
        # the editor's text is one line down now; the server's copy is not: no answer rather than a wrong one
        hover(conn, 2, uri, TOTAL_LINE + 1, 9)
        assert (await conn.response(2))["result"] is None
        # an incremental edit to a stale document cannot be placed: dropped, still stale
        conn.send(change(uri, 3, {"range": {"start": {"line": 1, "character": 0}, "end": {"line": 1, "character": 0}},
                                  "text": "# the sum of range(n)\n"}))
        hover(conn, 3, uri, TOTAL_LINE + 2, 9)
        assert (await conn.response(3))["result"] is None
        editor_text = comment + "# the sum of range(n)\n" + SOURCE
        if repair == "reopen":
            conn.send({"method": "textDocument/didClose", "params": {"textDocument": {"uri": uri}}})
            conn.send({"method": "textDocument/didOpen", "params": {"textDocument": {
                "uri": uri, "languageId": "python", "version": 4, "text": editor_text}}})
        else:
            conn.send(change(uri, 4, {"text": editor_text}))
        hover(conn, 4, uri, TOTAL_LINE + 2, 9)
        value = (await conn.response(4))["result"]["contents"]["value"]
        assert "**total** · line 10" in value and "total: 0 → 1 → 3" in value
        hover(conn, 5, uri, 0, 3)  # the comment line: nothing there
        assert (await conn.response(5))["result"] is None
    finally:
        await conn.stop()

"""The Debug Adapter Protocol's wire format: Content-Length framed JSON.

Written here rather than taken from PyPI: no maintained library implements
the adapter side (debugpy's messaging is internal to debugpy; ``dap-types``
has types only), and the framing is a few dozen lines.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from typing import Any, BinaryIO

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 64 * 1024 * 1024  # a larger Content-Length is a broken client, not a request
MAX_HEADER_LINE = 8192


class ProtocolError(Exception):
    """The byte stream is not DAP framing (the connection cannot go on)."""


class BadMessage(Exception):
    """One message could not be decoded; the stream is still in sync."""


def read_message(stream: BinaryIO) -> dict[str, Any] | None:
    """The next message, or None at end of stream.

    Raises :class:`BadMessage` for a well-framed body that is not a JSON
    object, :class:`ProtocolError` for broken framing."""
    length: int | None = None
    while True:
        line = stream.readline(MAX_HEADER_LINE)
        if not line:
            return None
        if not line.endswith(b"\n"):
            raise ProtocolError("header line too long or cut off")
        line = line.rstrip(b"\r\n")
        if not line:
            if length is None:
                continue  # stray blank line between messages
            break
        name, sep, value = line.partition(b":")
        if not sep:
            raise ProtocolError(f"malformed header line {line[:80]!r}")
        if name.strip().lower() == b"content-length":
            try:
                length = int(value.strip())
            except ValueError:
                raise ProtocolError(f"bad Content-Length {value.strip()[:40]!r}") from None
            if not 0 <= length <= MAX_MESSAGE_BYTES:
                raise ProtocolError(f"Content-Length {length} out of range")
    body = b""
    while len(body) < length:
        chunk = stream.read(length - len(body))
        if not chunk:
            return None
        body += chunk
    try:
        msg = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadMessage(f"message body is not JSON: {exc}") from None
    if not isinstance(msg, dict):
        raise BadMessage(f"message must be a JSON object, got {type(msg).__name__}")
    return msg


def encode_message(msg: dict[str, Any]) -> bytes:
    body = json.dumps(msg, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return b"Content-Length: " + str(len(body)).encode("ascii") + b"\r\n\r\n" + body


class PollingReader:
    """Reads a file descriptor (stdin) in a way that can be stopped.

    A thread blocked in ``sys.stdin.buffer.read`` holds the buffer's lock
    and aborts the interpreter at exit; this reader waits with ``select``
    in short slices and gives up when :meth:`stop` is called."""

    def __init__(self, fd: int, poll_seconds: float = 0.2) -> None:
        self._fd = fd
        self._buf = bytearray()
        self._eof = False
        self._stop = threading.Event()
        self._poll = poll_seconds

    def stop(self) -> None:
        self._stop.set()

    def _fill(self) -> bool:
        import os
        import select

        while not self._stop.is_set():
            ready, _, _ = select.select([self._fd], [], [], self._poll)
            if not ready:
                continue
            chunk = os.read(self._fd, 65536)
            if not chunk:
                self._eof = True
                return False
            self._buf += chunk
            return True
        return False

    def readline(self, limit: int = -1) -> bytes:
        while True:
            end = self._buf.find(b"\n")
            if end >= 0 and (limit < 0 or end < limit):
                out = bytes(self._buf[: end + 1])
                del self._buf[: end + 1]
                return out
            if 0 <= limit <= len(self._buf) or self._eof or not self._fill():
                n = len(self._buf) if limit < 0 else min(limit, len(self._buf))
                out = bytes(self._buf[:n])
                del self._buf[:n]
                return out

    def read(self, n: int) -> bytes:
        while len(self._buf) < n and not self._eof and self._fill():
            pass
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out


class Connection:
    """One client: reads requests, writes responses and events (thread-safe)."""

    def __init__(self, reader: BinaryIO, writer: BinaryIO) -> None:
        self._reader = reader
        self._writer = writer
        self._lock = threading.Lock()
        self._seq = 0
        self.closed = False

    def messages(self) -> Iterator[dict[str, Any] | BadMessage]:
        """Incoming messages until the client goes away; an undecodable
        message is yielded as its :class:`BadMessage`."""
        while not self.closed:
            try:
                msg = read_message(self._reader)
            except BadMessage as exc:
                yield exc
                continue
            except ProtocolError as exc:
                log.error("DAP stream broken: %s", exc)
                self.event("output", {"category": "stderr", "output": f"neuraldbg: protocol error: {exc}\n"})
                return
            except (OSError, ValueError):  # closed underneath us
                return
            if msg is None:
                return
            yield msg

    def send(self, msg: dict[str, Any]) -> None:
        with self._lock:
            if self.closed:
                return
            self._seq += 1
            msg = {"seq": self._seq, **msg}
            try:
                self._writer.write(encode_message(msg))
                self._writer.flush()
            except (OSError, ValueError):
                log.info("client went away while sending %s", msg.get("command") or msg.get("event"))
                self.closed = True

    def respond(self, request: dict[str, Any], body: dict[str, Any] | None = None, *, error: str | None = None) -> None:
        msg: dict[str, Any] = {
            "type": "response",
            "request_seq": request.get("seq", 0) if isinstance(request.get("seq"), int) else 0,
            "command": request.get("command") if isinstance(request.get("command"), str) else "",
            "success": error is None,
        }
        if error is not None:
            msg["message"] = error  # VS Code shows it as is
        elif body is not None:
            msg["body"] = body
        self.send(msg)

    def event(self, name: str, body: dict[str, Any] | None = None) -> None:
        msg: dict[str, Any] = {"type": "event", "event": name}
        if body is not None:
            msg["body"] = body
        self.send(msg)

    def close(self) -> None:
        with self._lock:
            self.closed = True
        stop = getattr(self._reader, "stop", None)
        if callable(stop):
            stop()

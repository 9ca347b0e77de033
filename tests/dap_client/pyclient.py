"""A small DAP client for the tests: spawns ``python -m neuraldbg.dap`` (or
connects to a TCP port), sends requests, collects responses and events, and
counts responses per request so that "exactly one response" is checked."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"


class RequestFailed(AssertionError):
    def __init__(self, command: str, message: str) -> None:
        super().__init__(f"{command} failed: {message}")
        self.command = command
        self.message = message


class DapClient:
    def __init__(self, reader: BinaryIO, writer: BinaryIO, proc: subprocess.Popen[bytes] | None = None,
                 sock: socket.socket | None = None, stderr_path: str | None = None) -> None:
        self._reader, self._writer = reader, writer
        self.proc, self.sock, self.stderr_path = proc, sock, stderr_path
        self._seq = 0
        self._cond = threading.Condition()
        self.responses: dict[int, dict[str, Any]] = {}
        self.response_counts: Counter[int] = Counter()
        self.events: list[dict[str, Any]] = []
        self._consumed: dict[str, int] = {}
        self.sent: list[int] = []
        self.closed = False
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    # -- construction --------------------------------------------------------
    @classmethod
    def spawn(cls) -> "DapClient":
        env = dict(os.environ)
        env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
        err = tempfile.NamedTemporaryFile(prefix="dap-stderr-", suffix=".log", delete=False)
        proc = subprocess.Popen([sys.executable, "-m", "neuraldbg.dap"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=err, cwd=str(REPO), env=env)
        assert proc.stdin is not None and proc.stdout is not None
        return cls(proc.stdout, proc.stdin, proc=proc, stderr_path=err.name)

    @classmethod
    @contextlib.contextmanager
    def initialized(cls) -> Iterator["DapClient"]:
        """A spawned adapter after ``initialize``; on exit it is shut down and
        checked to have answered every request once (the tests' fixture)."""
        client = cls.spawn()
        client.req("initialize", {"adapterID": "neuraldbg", "linesStartAt1": True})
        yield client
        client.shutdown()
        client.assert_one_response_each()

    @classmethod
    def connect(cls, port: int) -> "DapClient":
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        sock.settimeout(None)
        return cls(sock.makefile("rb"), sock.makefile("wb"), sock=sock)

    # -- wire ------------------------------------------------------------------
    def _read(self) -> None:
        try:
            while True:
                length = None
                while True:
                    line = self._reader.readline()
                    if not line:
                        return
                    line = line.strip()
                    if not line:
                        break
                    k, _, v = line.partition(b":")
                    if k.strip().lower() == b"content-length":
                        length = int(v)
                assert length is not None, "no Content-Length"
                body = self._reader.read(length)
                msg = json.loads(body)
                with self._cond:
                    if msg.get("type") == "response":
                        self.response_counts[msg["request_seq"]] += 1
                        self.responses.setdefault(msg["request_seq"], msg)
                    elif msg.get("type") == "event":
                        self.events.append(msg)
                    self._cond.notify_all()
        except (OSError, ValueError):
            return
        finally:
            with self._cond:
                self.closed = True
                self._cond.notify_all()

    def send_raw(self, data: bytes) -> None:
        self._writer.write(data)
        self._writer.flush()

    def send(self, command: str, arguments: Any = None, *, raw: dict[str, Any] | None = None) -> int:
        self._seq += 1
        msg: dict[str, Any] = {"seq": self._seq, "type": "request", "command": command}
        if arguments is not None:
            msg["arguments"] = arguments
        if raw is not None:
            msg.update(raw)
        body = json.dumps(msg).encode()
        self.send_raw(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.sent.append(self._seq)
        return self._seq

    def response(self, seq: int, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while seq not in self.responses:
                left = deadline - time.monotonic()
                if left <= 0 or self.closed:
                    raise AssertionError(f"no response to request {seq} ({'adapter closed' if self.closed else 'timeout'})"
                                         + self.stderr_tail())
                self._cond.wait(left)
            return self.responses[seq]

    def request(self, command: str, arguments: Any = None, timeout: float = 60) -> dict[str, Any]:
        return self.response(self.send(command, arguments), timeout)

    def req(self, command: str, arguments: Any = None, timeout: float = 60) -> dict[str, Any]:
        """The body of a successful response (raises RequestFailed otherwise)."""
        resp = self.request(command, arguments, timeout)
        if not resp["success"]:
            raise RequestFailed(command, resp.get("message", ""))
        return resp.get("body") or {}

    def fail(self, command: str, arguments: Any = None, timeout: float = 60) -> str:
        """The error message of a failing request (asserts that it failed)."""
        resp = self.request(command, arguments, timeout)
        assert resp["success"] is False, f"{command} unexpectedly succeeded: {resp}"
        message = resp.get("message") or ""
        assert message.strip(), f"{command} failed without a message"
        return message

    def wait_event(self, name: str, timeout: float = 60) -> dict[str, Any]:
        """The next not yet consumed event called ``name``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                start = self._consumed.get(name, 0)
                for i in range(start, len(self.events)):
                    if self.events[i]["event"] == name:
                        self._consumed[name] = i + 1
                        return self.events[i].get("body") or {}
                left = deadline - time.monotonic()
                if left <= 0 or self.closed:
                    raise AssertionError(f"no {name!r} event ({'adapter closed' if self.closed else 'timeout'}); "
                                         f"events so far: {[e['event'] for e in self.events]}" + self.stderr_tail())
                self._cond.wait(left)

    def outputs(self, category: str | None = None) -> list[str]:
        with self._cond:
            return [e["body"]["output"] for e in self.events if e["event"] == "output"
                    and (category is None or e["body"].get("category") == category)]

    def next_output(self, category: str, timeout: float = 30) -> str:
        """The next output event of ``category`` (other outputs are skipped)."""
        while True:
            body = self.wait_event("output", timeout)
            if body.get("category") == category:
                return body["output"]

    def stderr_tail(self) -> str:
        if not self.stderr_path:
            return ""
        try:
            return "\nadapter stderr:\n" + Path(self.stderr_path).read_text()[-3000:]
        except OSError:
            return ""

    def assert_one_response_each(self) -> None:
        with self._cond:
            for seq in self.sent:
                assert self.response_counts[seq] == 1, f"request {seq} got {self.response_counts[seq]} responses"
            extra = set(self.response_counts) - set(self.sent)
            assert not extra, f"responses to requests never sent: {extra}"

    def close(self) -> None:
        if self.proc is not None:
            try:
                self.proc.stdin.close()  # type: ignore[union-attr]
            except OSError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            if self.stderr_path:
                try:
                    os.unlink(self.stderr_path)
                except OSError:
                    pass
        if self.sock is not None:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.sock.close()

    # -- debugging conveniences ----------------------------------------------
    def start(self, program: str | Path, *, breakpoints: list[dict[str, Any]] | None = None, exceptions: bool = False,
              **launch: Any) -> dict[str, Any]:
        """initialize + launch + breakpoints + configurationDone; returns the
        first ``stopped`` body (or ``{"terminated": True}``)."""
        self.req("initialize", {"adapterID": "neuraldbg", "linesStartAt1": True, "columnsStartAt1": True,
                                "pathFormat": "path"})
        self.req("launch", {"program": str(program), **launch}, timeout=120)
        self.wait_event("initialized")
        if breakpoints is not None:
            self.set_breakpoints(program, breakpoints)
        self.req("setExceptionBreakpoints", {"filters": ["raised"] if exceptions else []})
        self.req("configurationDone")
        return self.wait_stop()

    def set_breakpoints(self, program: str | Path, breakpoints: list[dict[str, Any]]) -> list[dict[str, Any]]:
        body = self.req("setBreakpoints", {"source": {"path": str(program)}, "breakpoints": breakpoints})
        return body["breakpoints"]

    def wait_stop(self, timeout: float = 120) -> dict[str, Any]:
        """The next stopped event's body, or {"terminated": True, "exitCode": n}."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for name in ("stopped", "terminated"):
                    start = self._consumed.get(name, 0)
                    for i in range(start, len(self.events)):
                        if self.events[i]["event"] == name:
                            self._consumed[name] = i + 1
                            if name == "stopped":
                                return self.events[i]["body"]
                            exited = [e for e in self.events if e["event"] == "exited"]
                            return {"terminated": True, "exitCode": exited[-1]["body"]["exitCode"] if exited else None}
                left = deadline - time.monotonic()
                if left <= 0 or self.closed:
                    raise AssertionError("no stopped/terminated event" + self.stderr_tail())
                self._cond.wait(left)

    def step(self, command: str) -> dict[str, Any]:
        self.req(command, {"threadId": 1})
        return self.wait_stop()

    def stack(self) -> list[dict[str, Any]]:
        return self.req("stackTrace", {"threadId": 1})["stackFrames"]

    def locals(self, frame_id: int | None = None) -> dict[str, str]:
        if frame_id is None:
            frame_id = self.stack()[0]["id"]
        scopes = self.req("scopes", {"frameId": frame_id})["scopes"]
        ref = scopes[0]["variablesReference"]
        return {v["name"]: v["value"] for v in self.req("variables", {"variablesReference": ref})["variables"]}

    def where(self) -> tuple[int, dict[str, str]]:
        """(line, locals) of the top frame, without the (return)/(exception) pseudo-variables."""
        top = self.stack()[0]
        names = {k: v for k, v in self.locals(top["id"]).items() if not k.startswith("(")}
        return top["line"], names

    def trace(self) -> dict[str, Any]:
        return self.req("neuraldbg/trace")

    def shutdown(self) -> None:
        if not self.closed:
            try:
                self.request("disconnect", {}, timeout=30)
            except AssertionError:
                pass
        self.close()

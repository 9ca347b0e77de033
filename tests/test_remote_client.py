"""RemoteBackend against raw HTTP servers that misbehave on purpose, and the
request shapes it sends to vLLM, SGLang and neuraldbg servers."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from neuraldbg.backends.base import BackendError, CancelToken, Cancelled, Sampling
from neuraldbg.backends.remote import RemoteBackend
from neuraldbg.trace import cwm_tokens as ct
from neuraldbg.trace.tokenizer import TextTokenizer

GREEDY = Sampling(temperature=0.0, max_tokens=50)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # the body ends when the connection closes

    def log_message(self, *args: Any) -> None:
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        server: RawServer = self.server.owner  # type: ignore[attr-defined]
        body = json.loads(raw) if raw else None
        with server.lock:
            server.requests.append((self.command, self.path, dict(self.headers), body))
            n = len(server.requests)
        server.script(self, self.path, body, n)

    do_GET = _serve
    do_POST = _serve

    # helpers for scripts
    def start(self, status: int = 200, ctype: str = "text/event-stream", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()

    def event(self, obj: Any) -> None:
        data = obj if isinstance(obj, str) else json.dumps(obj)
        self.wfile.write(f"data: {data}\n\n".encode())
        self.wfile.flush()

    def json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        self.start(status, "application/json", headers)
        self.wfile.write(json.dumps(obj).encode())


Script = Callable[[Handler, str, Any, int], None]


class RawServer:
    def __init__(self, script: Script, port: int = 0) -> None:
        self.script = script
        self.requests: list[tuple[str, str, dict[str, str], Any]] = []
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.httpd.owner = self  # type: ignore[attr-defined]
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def posts(self) -> list[Any]:
        return [r[3] for r in self.requests if r[0] == "POST"]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def raw() -> Iterator[Callable[[Script], RawServer]]:
    servers: list[RawServer] = []

    def make(script: Script) -> RawServer:
        servers.append(RawServer(script))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


def vllm_chunk(ids: list[int] | None = None, text: str = "", finish: str | None = None, stop: int | None = None,
               **extra: Any) -> dict[str, Any]:
    choice: dict[str, Any] = {"index": 0, "text": text, "logprobs": None, "finish_reason": finish, "stop_reason": stop}
    if ids is not None:
        choice["token_ids"] = ids
    choice.update(extra)
    return {"id": "cmpl-1", "object": "text_completion", "model": "m", "choices": [choice], "usage": None}


def models_card(owner: str) -> dict[str, Any]:
    return {"object": "list", "data": [{"id": "served-model", "object": "model", "owned_by": owner}]}


def backend(url: str, **kw: Any) -> RemoteBackend:
    kw.setdefault("flavor", "vllm")
    kw.setdefault("model", "m")
    kw.setdefault("backoff", 0.01)
    kw.setdefault("timeout", 5.0)
    return RemoteBackend(url, **kw)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- request shapes --------------------------------------------------------------


def test_vllm_request_shape(raw) -> None:
    def script(h: Handler, path: str, body: Any, n: int) -> None:
        if path == "/v1/models":
            h.json(200, models_card("vllm"))
            return
        h.start()
        h.event(vllm_chunk([5, ct.FRAME_SEP], finish="stop", stop=ct.FRAME_SEP))
        h.event({"id": "cmpl-1", "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2,
                                                          "prompt_tokens_details": {"cached_tokens": 2}}})
        h.event("[DONE]")

    srv = raw(script)
    b = RemoteBackend(srv.url, api_key="sekret", backoff=0.01)  # flavor auto, model from /v1/models
    ids = list(b.generate([1, 2, 3], stop_ids=list(ct.TRACE_STOP_IDS), sampling=Sampling(temperature=0.2, top_p=0.9, max_tokens=7, seed=11)))
    assert ids == [5, ct.FRAME_SEP]
    assert b.flavor == "vllm" and b.model == "served-model" and b.id_source == "token_ids"
    method, path, headers, body = srv.requests[-1]
    assert (method, path) == ("POST", "/v1/completions")
    assert headers["Authorization"] == "Bearer sekret"
    assert body == {
        "model": "served-model", "prompt": [1, 2, 3], "max_tokens": 7, "temperature": 0.2, "top_p": 0.9, "seed": 11,
        "stop_token_ids": list(ct.TRACE_STOP_IDS), "stream": True, "stream_options": {"include_usage": True},
        "return_token_ids": True, "logprobs": 0, "return_tokens_as_token_ids": True,
        "spaces_between_special_tokens": False, "skip_special_tokens": False, "include_stop_str_in_output": True,
    }
    assert b.stats.requests == 1 and b.stats.prompt_tokens == 3 and b.stats.generated_tokens == 2
    assert b.stats.reused_tokens == 2 and b.stats.prefilled_tokens == 1


def test_sglang_request_shape_and_cumulative_output_ids(raw) -> None:
    final = [7, 8, 9, ct.FRAME_SEP]

    def script(h: Handler, path: str, body: Any, n: int) -> None:
        if path == "/v1/models":
            h.json(200, models_card("sglang"))
            return
        h.start()
        # SGLang's default: cumulative text and output_ids in every chunk.
        for k in (1, 3, 4):
            fin = {"type": "stop", "matched": ct.FRAME_SEP} if k == 4 else None
            h.event({"text": "abc"[:k] + ("<|frame_sep|>" if k == 4 else ""), "output_ids": final[:k],
                     "meta_info": {"id": "r", "prompt_tokens": 2, "completion_tokens": k, "cached_tokens": 1, "finish_reason": fin}})
        h.event("[DONE]")

    srv = raw(script)
    b = RemoteBackend(srv.url, backoff=0.01)
    assert b.health() == ["served-model"] and b.flavor == "sglang"
    ids = list(b.generate([1, 2], stop_ids=[ct.FRAME_SEP], sampling=Sampling(temperature=0.0, top_p=0.95, max_tokens=9)))
    assert ids == final
    method, path, _headers, body = srv.requests[-1]
    assert (method, path) == ("POST", "/generate")
    assert body == {
        "input_ids": [1, 2], "stream": True,
        "sampling_params": {"max_new_tokens": 9, "temperature": 0.0, "top_p": 0.95, "stop_token_ids": [ct.FRAME_SEP],
                            "skip_special_tokens": False, "spaces_between_special_tokens": False, "no_stop_trim": True},
    }
    assert b.stats.reused_tokens == 1 and b.stats.prefilled_tokens == 1


def test_sglang_incremental_output_ids(raw) -> None:
    def script(h: Handler, path: str, body: Any, n: int) -> None:
        h.start()
        h.event({"text": "a", "output_ids": [7], "meta_info": {"completion_tokens": 1, "finish_reason": None}})
        h.event({"text": "a", "output_ids": [7], "meta_info": {"completion_tokens": 2, "finish_reason": None}})
        h.event({"text": "", "output_ids": [ct.EOT], "meta_info": {"completion_tokens": 3,
                                                                   "finish_reason": {"type": "stop", "matched": ct.EOT}}})
        h.event("[DONE]")

    srv = raw(script)
    b = backend(srv.url, flavor="sglang")
    assert list(b.generate([1], stop_ids=[ct.EOT], sampling=GREEDY)) == [7, 7, ct.EOT]
    assert srv.posts()[0]["sampling_params"].get("sampling_seed") is None
    list(b.generate([1], stop_ids=[ct.EOT], sampling=Sampling(seed=3)))
    assert srv.posts()[1]["sampling_params"]["sampling_seed"] == 3


def test_neuraldbg_request_shape(raw) -> None:
    def script(h: Handler, path: str, body: Any, n: int) -> None:
        if path == "/v1/models":
            h.json(404, {"detail": "Not Found"})
            return
        h.start()
        h.event(vllm_chunk([4], finish="length"))
        h.event("[DONE]")

    srv = raw(script)
    b = backend(srv.url, flavor="neuraldbg", model=None)
    list(b.generate([9], stop_ids=[], sampling=Sampling(max_tokens=1)))
    body = srv.posts()[0]
    assert "model" not in body  # /v1/models answered no model list: none is sent
    assert body["return_token_ids"] is True and body["include_stop_str_in_output"] is True
    assert body["skip_special_tokens"] is False
    assert "logprobs" not in body and "return_tokens_as_token_ids" not in body and "seed" not in body


# -- where the ids come from -------------------------------------------------------


def test_ids_from_logprobs_token_id_strings(raw) -> None:
    def script(h: Handler, path: str, body: Any, n: int) -> None:
        h.start()
        h.event(vllm_chunk(None, "x", logprobs={"tokens": ["token_id:120"], "token_logprobs": [-0.1]}))
        h.event(vllm_chunk(None, "<|frame_sep|>", finish="stop", stop=ct.FRAME_SEP,
                           logprobs={"tokens": [f"token_id:{ct.FRAME_SEP}"], "token_logprobs": [-0.2]}))
        h.event("[DONE]")

    b = backend(raw(script).url)
    assert list(b.generate([1], stop_ids=[ct.FRAME_SEP], sampling=GREEDY)) == [120, ct.FRAME_SEP]
    assert b.id_source == "logprobs"


def text_chunks(texts: list[str]) -> Script:
    """A text-only engine: the texts as chunks, then a finish naming FRAME_SEP."""

    def script(h: Handler, path: str, body: Any, n: int) -> None:
        h.start()
        for text in texts:
            h.event(vllm_chunk(None, text))
        h.event(vllm_chunk(None, "", finish="stop", stop=ct.FRAME_SEP))
        h.event("[DONE]")

    return script


def test_text_fallback_uses_tokenizer_and_special_names(raw) -> None:
    tok = TextTokenizer()
    # An old engine: text only; a special name split across chunks; the
    # stop token trimmed from the text but named in stop_reason.
    b = backend(raw(text_chunks(['{"x": "1"}<|act', "ion_sep|>  y = 2\n", "é"])).url, tokenizer=tok)
    pieces = list(b.generate_pieces([1], stop_ids=[ct.FRAME_SEP], sampling=GREEDY))
    ids = [i for p in pieces for i in p.ids]
    assert ct.render(tok, ids) == '{"x": "1"}<|action_sep|>  y = 2\né<|frame_sep|>'
    assert ids[-1] == ct.FRAME_SEP and ids.count(ct.ACTION_SEP) == 1
    assert b.id_source == "text" and {p.source for p in pieces} == {"text"}
    assert "".join(p.text for p in pieces) == '{"x": "1"}<|action_sep|>  y = 2\né'


def test_client_enforces_stop_ids_and_max_tokens(raw) -> None:
    def script(h: Handler, path: str, body: Any, n: int) -> None:
        h.start()  # a server that ignores stop_token_ids and max_tokens
        for k in range(30):
            h.event(vllm_chunk([10 + k, ct.FRAME_SEP] if k == 2 else [10 + k]))
            time.sleep(0.01)
        h.event(vllm_chunk([], finish="length"))
        h.event("[DONE]")

    b = backend(raw(script).url)
    assert list(b.generate([1], stop_ids=[ct.FRAME_SEP], sampling=GREEDY)) == [10, 11, 12, ct.FRAME_SEP]
    assert list(b.generate([1], stop_ids=[], sampling=Sampling(max_tokens=5))) == [10, 11, 12, ct.FRAME_SEP, 13]


def test_json_answer_instead_of_stream(raw) -> None:
    def script(h: Handler, path: str, body: Any, n: int) -> None:
        h.json(200, {"choices": [{"index": 0, "text": "", "token_ids": [3, 4, ct.EOT], "finish_reason": "stop",
                                  "stop_reason": ct.EOT}], "usage": {"prompt_tokens": 1, "completion_tokens": 3}})

    b = backend(raw(script).url)
    assert list(b.generate([1], stop_ids=[ct.EOT], sampling=GREEDY)) == [3, 4, ct.EOT]


# -- failures ----------------------------------------------------------------------------


def test_unreachable_server_is_a_clear_error() -> None:
    port = free_port()
    b = backend(f"http://127.0.0.1:{port}", retries=2)
    t0 = time.monotonic()
    with pytest.raises(BackendError, match=rf"cannot reach model server at http://127.0.0.1:{port}"):
        list(b.generate([1], stop_ids=[], sampling=GREEDY))
    assert time.monotonic() - t0 < 5
    with pytest.raises(BackendError, match="cannot reach model server"):
        b.health()


def test_http_400_is_not_retried_and_names_the_server_message(raw) -> None:
    def script(h: Handler, path: str, body: Any, n: int) -> None:
        h.json(400, {"error": {"message": "prompt too long: 9999 > 4096", "type": "BadRequestError", "code": 400}})

    srv = raw(script)
    with pytest.raises(BackendError, match=r"HTTP 400 .*prompt too long: 9999 > 4096"):
        list(backend(srv.url).generate([1], stop_ids=[], sampling=GREEDY))
    assert len(srv.posts()) == 1


def test_http_500_is_retried_then_reported(raw) -> None:
    def script(h: Handler, path: str, body: Any, n: int) -> None:
        h.json(500, {"object": "error", "message": "engine dead", "type": "InternalServerError", "code": 500})

    srv = raw(script)
    with pytest.raises(BackendError, match=r"HTTP 500 .*engine dead"):
        list(backend(srv.url, retries=2).generate([1], stop_ids=[], sampling=GREEDY))
    assert len(srv.posts()) == 3


def test_429_then_success(raw) -> None:
    def script(h: Handler, path: str, body: Any, n: int) -> None:
        if n == 1:
            h.json(429, {"error": {"message": "busy"}}, headers={"Retry-After": "0"})
            return
        h.start()
        h.event(vllm_chunk([6], finish="length"))
        h.event("[DONE]")

    srv = raw(script)
    assert list(backend(srv.url).generate([1], stop_ids=[], sampling=Sampling(max_tokens=1))) == [6]
    assert len(srv.posts()) == 2


def test_auth_failure_is_clear(raw) -> None:
    def script(h: Handler, path: str, body: Any, n: int) -> None:
        h.json(401, {"error": {"message": "Unauthorized"}})

    srv = raw(script)
    with pytest.raises(BackendError, match=r"refused the request \(HTTP 401\).*check the API key"):
        list(backend(srv.url, api_key="wrong").generate([1], stop_ids=[], sampling=GREEDY))
    assert len(srv.posts()) == 1


def test_malformed_chunk(raw) -> None:
    def script(h: Handler, path: str, body: Any, n: int) -> None:
        h.start()
        h.event(vllm_chunk([5]))
        h.event("{not json")

    with pytest.raises(BackendError, match=r"malformed stream chunk \(not JSON\)"):
        list(backend(raw(script).url).generate([1], stop_ids=[], sampling=GREEDY))


def test_chunk_with_bad_ids(raw) -> None:
    def script(h: Handler, path: str, body: Any, n: int) -> None:
        h.start()
        h.event(vllm_chunk(["x"]))

    with pytest.raises(BackendError, match="not a list of token ids"):
        list(backend(raw(script).url).generate([1], stop_ids=[], sampling=GREEDY))


@pytest.mark.parametrize("tail", [[], ["[DONE]"]])
def test_truncated_stream(raw, tail: list[str]) -> None:
    def script(h: Handler, path: str, body: Any, n: int) -> None:
        h.start()
        h.event(vllm_chunk([5]))
        h.event(vllm_chunk([6]))
        for t in tail:
            h.event(t)
        # then the connection closes without a finish_reason

    b = backend(raw(script).url)
    got: list[int] = []
    with pytest.raises(BackendError, match=r"ended the stream early .*truncated after 2 tokens"):
        for i in b.generate([1], stop_ids=[], sampling=GREEDY):
            got.append(i)
    assert got == [5, 6]


def test_error_event_mid_stream(raw) -> None:
    def script(h: Handler, path: str, body: Any, n: int) -> None:
        h.start()
        h.event(vllm_chunk([5]))
        h.event({"error": {"message": "CUDA out of memory", "type": "InternalServerError", "code": 500}})
        h.event("[DONE]")

    with pytest.raises(BackendError, match="failed: CUDA out of memory"):
        list(backend(raw(script).url).generate([1], stop_ids=[], sampling=GREEDY))


def test_stalled_server_times_out(raw) -> None:
    release = threading.Event()

    def script(h: Handler, path: str, body: Any, n: int) -> None:
        h.start()
        h.event(vllm_chunk([5]))
        release.wait(10)

    b = backend(raw(script).url, timeout=0.5)
    got: list[int] = []
    try:
        with pytest.raises(BackendError, match=r"timed out after 0.5 s waiting for the next token \(1 received\)"):
            for i in b.generate([1], stop_ids=[], sampling=GREEDY):
                got.append(i)
    finally:
        release.set()
    assert got == [5]


def test_server_silent_before_headers_times_out(raw) -> None:
    release = threading.Event()

    def script(h: Handler, path: str, body: Any, n: int) -> None:
        release.wait(10)

    srv = raw(script)
    try:
        with pytest.raises(BackendError, match=r"timed out after 0.5 s waiting for a response"):
            list(backend(srv.url, timeout=0.5).generate([1], stop_ids=[], sampling=GREEDY))
    finally:
        release.set()
    assert len(srv.posts()) == 1  # a slow answer is not a reason to send the work twice


def test_connection_refused_then_server_comes_up() -> None:
    port = free_port()
    servers: list[RawServer] = []

    def script(h: Handler, path: str, body: Any, n: int) -> None:
        h.start()
        h.event(vllm_chunk([8, ct.EOT], finish="stop", stop=ct.EOT))
        h.event("[DONE]")

    def start_later() -> None:
        time.sleep(0.4)
        servers.append(RawServer(script, port=port))

    t = threading.Thread(target=start_later)
    t.start()
    try:
        b = backend(f"http://127.0.0.1:{port}", retries=6, backoff=0.1)  # 0.1+0.2+0.4+... > 0.4 s
        assert list(b.generate([1], stop_ids=[ct.EOT], sampling=GREEDY)) == [8, ct.EOT]
    finally:
        t.join()
        for s in servers:
            s.close()
    assert len(servers[0].posts()) == 1


def test_never_resent_after_tokens_were_streamed(raw) -> None:
    def script(h: Handler, path: str, body: Any, n: int) -> None:
        h.start()
        h.event(vllm_chunk([5]))
        h.event(vllm_chunk([6]))
        # a broken connection, mid-chunk
        h.wfile.write(b'data: {"choices": [{"ind')
        h.wfile.flush()
        h.connection.shutdown(socket.SHUT_RDWR)

    srv = raw(script)
    b = backend(srv.url, retries=3)
    got: list[int] = []
    with pytest.raises(BackendError):
        for i in b.generate([1], stop_ids=[], sampling=GREEDY):
            got.append(i)
    assert got == [5, 6]
    assert len(srv.posts()) == 1


def ids_before_a_cancel_after_three(b: RemoteBackend) -> list[int]:
    """The ids a consumer got when it cancelled right after the third."""
    cancel = CancelToken()
    got: list[int] = []
    with pytest.raises(Cancelled):
        for i in b.generate([1], stop_ids=[], sampling=Sampling(max_tokens=200), cancel=cancel):
            got.append(i)
            if len(got) == 3:
                cancel.cancel()
    return got


def test_cancel_between_chunks_closes_the_stream(raw) -> None:
    gone = threading.Event()

    def script(h: Handler, path: str, body: Any, n: int) -> None:
        h.start()
        try:
            for k in range(200):
                h.event(vllm_chunk([k]))
                time.sleep(0.02)
        except (BrokenPipeError, ConnectionResetError):
            gone.set()

    assert ids_before_a_cancel_after_three(backend(raw(script).url)) == [0, 1, 2]
    assert gone.wait(5), "the server kept writing to a client that cancelled"


def test_cancel_inside_a_chunk_of_several_ids(raw) -> None:
    # A server batches ids when the client reads slower than the model writes;
    # a cancel after the 3rd id must not hand out the 4th from the same chunk.
    def script(h: Handler, path: str, body: Any, n: int) -> None:
        h.start()
        try:
            for k in range(0, 200, 4):
                h.event(vllm_chunk([k, k + 1, k + 2, k + 3]))
                time.sleep(0.02)
        except (BrokenPipeError, ConnectionResetError):
            pass

    assert ids_before_a_cancel_after_three(backend(raw(script).url)) == [0, 1, 2]


def test_bad_arguments() -> None:
    with pytest.raises(BackendError, match="invalid model server URL"):
        RemoteBackend("ftp://host:1")
    with pytest.raises(BackendError, match="unknown remote flavor"):
        RemoteBackend("http://127.0.0.1:1", flavor="tgi")  # type: ignore[arg-type]
    b = RemoteBackend("http://127.0.0.1:1/v1/")
    assert b.url == "http://127.0.0.1:1"
    with pytest.raises(BackendError, match="non-empty list of token ids"):
        list(b.generate([], stop_ids=[], sampling=GREEDY))
    b.close()
    with pytest.raises(BackendError, match="is closed"):
        list(b.generate([1], stop_ids=[], sampling=GREEDY))


# -- cached-token reporting, the logprobs fallback, scoring dialects -------------------


def _usage_script(details: bool) -> Script:
    def script(h: Handler, path: str, body: Any, n: int) -> None:
        h.start()
        h.event(vllm_chunk([5, ct.FRAME_SEP], finish="stop", stop=ct.FRAME_SEP))
        usage: dict[str, Any] = {"prompt_tokens": 3, "completion_tokens": 2}
        if details:
            usage["prompt_tokens_details"] = {"cached_tokens": 0}
        h.event({"id": "cmpl-1", "choices": [], "usage": usage})
        h.event("[DONE]")

    return script


def test_a_server_without_cached_token_counts_is_told_apart_from_zero_cached(raw) -> None:
    from neuraldbg.server.notify import StatusReporter, cached_tokens_note

    silent = backend(raw(_usage_script(details=False)).url)  # vLLM without --enable-prompt-tokens-details
    counted = backend(raw(_usage_script(details=True)).url)
    assert silent.reports_cached_tokens is None and cached_tokens_note(silent) is None  # nothing known yet
    for b in (silent, counted):
        list(b.generate([1, 2, 3], stop_ids=[ct.FRAME_SEP], sampling=GREEDY))
        assert b.stats.reused_tokens == 0
    assert silent.reports_cached_tokens is False and counted.reports_cached_tokens is True
    assert cached_tokens_note(counted) is None
    status = StatusReporter(send=lambda _: None, queue=lambda: 0, backend=lambda: "remote", model=lambda: None,
                            note=lambda: cached_tokens_note(silent))
    assert status.payload()["message"] == "ready (remote backend); the model server does not report cached tokens (prefix-cache reuse unknown)"


def test_the_status_note_reads_the_loaded_backend_only(raw) -> None:
    from neuraldbg.config import Settings
    from neuraldbg.simulation.factory import EngineFactory
    from neuraldbg.server.notify import cached_tokens_note

    srv = raw(_usage_script(details=False))
    settings = Settings(backend="remote", url=srv.url)
    factory = EngineFactory()
    assert factory.loaded(settings) is None and srv.requests == []  # asking never loads
    remote, _tok = factory.backend(settings)
    assert factory.loaded(settings) is remote
    remote.flavor, remote.model, remote._resolved = "vllm", "m", True
    list(remote.generate([1], stop_ids=[ct.FRAME_SEP], sampling=GREEDY))
    assert "does not report cached tokens" in (cached_tokens_note(factory.loaded(settings)) or "")
    factory.close()


def test_logprobs_are_asked_only_until_the_server_sends_token_ids(raw) -> None:
    def script(h: Handler, path: str, body: Any, n: int) -> None:
        h.start()
        h.event(vllm_chunk([5, ct.FRAME_SEP], finish="stop", stop=ct.FRAME_SEP))
        h.event("[DONE]")

    srv = raw(script)
    b = backend(srv.url)
    for _ in range(2):
        list(b.generate([1], stop_ids=[ct.FRAME_SEP], sampling=GREEDY))
    first, second = srv.posts()
    assert first["logprobs"] == 0 and first["return_tokens_as_token_ids"] is True
    # vLLM < 0.14 skips speculative decoding for any request with logprobs
    assert "logprobs" not in second and "return_tokens_as_token_ids" not in second
    assert second["return_token_ids"] is True and second["spaces_between_special_tokens"] is False


def test_text_only_stop_names_count_only_at_the_end(raw) -> None:
    tok = TextTokenizer()
    # a value that spells the stop token, split so that a chunk ends right after it
    chunks = ['{"s": "\'<|frame_sep|>', "'\"}<|action_sep|>    return s\n", "<|frame_sep|>"]
    b = backend(raw(text_chunks(chunks)).url, tokenizer=tok)
    ids = list(b.generate([1], stop_ids=[ct.FRAME_SEP], sampling=GREEDY))
    assert ids.count(ct.FRAME_SEP) == 1 and ids[-1] == ct.FRAME_SEP
    assert ct.render(tok, ids) == '{"s": "\'<|frame_sep|>\'"}<|action_sep|>    return s\n<|frame_sep|>'


def test_text_only_names_the_prompt_spells_stay_text(raw) -> None:
    tok = TextTokenizer()

    def script(h: Handler, path: str, body: Any, n: int) -> None:
        h.start()
        h.event(vllm_chunk(None, '<|line_sep|>{"t": "\'<|action_sep|>\'"}<|action_sep|>    return t\n<|frame_sep|>',
                           finish="stop", stop=ct.FRAME_SEP))
        h.event("[DONE]")

    b = backend(raw(script).url, tokenizer=tok)
    prompt = [ct.BOS, ct.TRACE_CONTEXT_START, *tok.encode("    t = '<|action_sep|>'\n"), ct.FRAME_SEP]
    ids = list(b.generate(prompt, stop_ids=[ct.FRAME_SEP], sampling=Sampling(max_tokens=500)))
    # the user's string is never a special id; the real separator is ambiguous too, so it stays text
    assert ct.ACTION_SEP not in ids and ids[0] == ct.LINE_SEP and ids[-1] == ct.FRAME_SEP
    from neuraldbg.trace.cwm_parse import StreamParser

    frames = StreamParser(tok).feed_ids(ids)
    assert len(frames) == 1 and frames[0].flagged  # flagged, not silently wrong
    # without the name in the prompt the separator is the special id
    plain = [ct.BOS, ct.TRACE_CONTEXT_START, *tok.encode("    t = 1\n"), ct.FRAME_SEP]
    assert list(b.generate(plain, stop_ids=[ct.FRAME_SEP], sampling=Sampling(max_tokens=500))).count(ct.ACTION_SEP) == 2


def test_vllm_scoring_request_and_prompt_logprobs(raw) -> None:
    ids = [7, 8, 9, 10]

    def script(h: Handler, path: str, body: Any, n: int) -> None:
        if path == "/v1/models":
            h.json(200, {"object": "list", "data": [{"id": "m", "owned_by": "vllm", "max_model_len": 5}]})
            return
        entries = [None,
                   {"8": {"logprob": -0.5, "rank": 1, "decoded_token": "b"}},
                   {"9": {"logprob": -9999.0, "rank": 4000, "decoded_token": "c"},
                    "3": {"logprob": -0.1, "rank": 1, "decoded_token": "x"}},
                   {"10": {"logprob": -1.25, "rank": 2, "decoded_token": "d"},
                    "11": {"logprob": -0.75, "rank": 1, "decoded_token": "e"}}]
        h.json(200, {"choices": [{"index": 0, "text": "z", "finish_reason": "length", "prompt_logprobs": entries}],
                     "usage": {"prompt_tokens": 4, "completion_tokens": 1}})

    srv = raw(script)
    b = RemoteBackend(srv.url, backoff=0.01)
    from neuraldbg.backends.base import ScoringBackend, TokenScore

    assert isinstance(b, ScoringBackend)
    assert b.score(ids, start=2) == [TokenScore(9, -9999.0, 3, -0.1), TokenScore(10, -1.25, 11, -0.75)]
    assert srv.posts()[-1] == {"model": "m", "prompt": ids, "max_tokens": 1, "temperature": 0.0, "prompt_logprobs": 1}
    assert b.score(ids, start=1)[0] == TokenScore(8, -0.5, 8, -0.5)
    posts = len(srv.posts())
    with pytest.raises(BackendError, match=r"^cannot score 5 tokens: the context of the model at .* holds 5$"):
        b.score(ids + [1], start=1)  # 5 + the one token vLLM generates > 5
    assert len(srv.posts()) == posts  # refused before sending


def test_sglang_scoring_request_and_input_logprobs(raw) -> None:
    ids = [7, 8, 9, 10]

    def script(h: Handler, path: str, body: Any, n: int) -> None:
        h.json(200, {"text": "z", "meta_info": {
            "input_token_logprobs": [[None, 8, None], [-2.0, 9, None], [-0.5, 10, None]],
            "input_top_logprobs": [None, [[-0.25, 4, None]], [[-0.5, 10, None]]],
            "cached_tokens": 0, "finish_reason": {"type": "length", "length": 1}}})

    srv = raw(script)
    b = backend(srv.url, flavor="sglang")
    from neuraldbg.backends.base import TokenScore

    assert b.score(ids, start=2) == [TokenScore(9, -2.0, 4, -0.25), TokenScore(10, -0.5, 10, -0.5)]
    method, path, _headers, body = srv.requests[-1]
    assert (method, path) == ("POST", "/generate")
    assert body == {"input_ids": ids, "return_logprob": True, "logprob_start_len": 1, "top_logprobs_num": 1,
                    "stream": False, "sampling_params": {"max_new_tokens": 1, "temperature": 0.0}}
    with pytest.raises(BackendError, match="returned 3 input logprobs for 4 positions"):
        b.score(ids, start=1)

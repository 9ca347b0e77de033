"""The model server's HTTP API, with RemoteBackend and plain httpx as
clients, over a deterministic scripted TokenBackend."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import pytest

from neuraldbg.backends.base import BackendError, BackendStats, CancelToken, Cancelled, Sampling
from neuraldbg.backends.remote import RemoteBackend
from neuraldbg.hosting.modelserver import ModelServerError, RunningModelServer, start_model_server
from neuraldbg.trace import cwm_tokens as ct
from neuraldbg.trace.tokenizer import TextTokenizer

TOK = TextTokenizer()
SCRIPT = ct.ids_from_text(TOK, '{"n": "3é"}<|action_sep|>    return n\n<|frame_sep|>more<|end_of_text|>')


class ScriptedBackend:
    """Yields SCRIPT from an offset set by the prompt; records what the
    server did with it (concurrency, cancellation)."""

    name = "scripted"

    def __init__(self, delay: float = 0.0, fail_after: int | None = None) -> None:
        self.stats = BackendStats()
        self.tokenizer = TOK
        self.delay = delay
        self.fail_after = fail_after
        self.cancelled = threading.Event()
        self.started = threading.Event()
        self.running = 0
        self.max_running = 0
        self._lock = threading.Lock()

    def generate(self, prompt: Sequence[int], *, stop_ids: Sequence[int], sampling: Sampling,
                 cancel: CancelToken | None = None) -> Iterator[int]:
        with self._lock:
            self.running += 1
            self.max_running = max(self.max_running, self.running)
        self.started.set()
        try:
            self.stats.requests += 1
            self.stats.prompt_tokens += len(prompt)
            self.stats.reused_tokens += len(prompt) // 2
            for k in range(sampling.max_tokens):
                if cancel is not None and cancel.cancelled:
                    self.cancelled.set()
                    raise Cancelled()
                if self.fail_after is not None and k == self.fail_after:
                    raise BackendError("GPU fell off the bus")
                if self.delay:
                    time.sleep(self.delay)
                token = SCRIPT[(sum(prompt) + k) % len(SCRIPT)]
                self.stats.generated_tokens += 1
                yield token
                if token in stop_ids:
                    return
        finally:
            with self._lock:
                self.running -= 1

    def close(self) -> None:
        pass


def expected(prompt: Sequence[int], stop_ids: Sequence[int], max_tokens: int) -> list[int]:
    return list(ScriptedBackend().generate(prompt, stop_ids=stop_ids, sampling=Sampling(max_tokens=max_tokens)))


@pytest.fixture
def served() -> Iterator[Any]:
    running: list[RunningModelServer] = []

    def make(backend: ScriptedBackend | None = None, **kw: Any) -> tuple[RunningModelServer, ScriptedBackend]:
        b = backend or ScriptedBackend()
        running.append(start_model_server(b, **kw))
        return running[-1], b

    yield make
    for r in running:
        r.stop()


STOPS = [ct.FRAME_SEP, ct.EOT]


def test_stream_and_plain_answers_match_the_backend(served) -> None:
    srv, _ = served()
    remote = RemoteBackend(srv.url)
    prompt = [1, 2, 3]
    want = expected(prompt, STOPS, 100)
    assert want[-1] == ct.FRAME_SEP
    assert list(remote.generate(prompt, stop_ids=STOPS, sampling=Sampling(max_tokens=100))) == want
    assert remote.flavor == "neuraldbg" and remote.model == "scripted" and remote.id_source == "token_ids"

    body = {"prompt": prompt, "max_tokens": 100, "stop_token_ids": STOPS, "return_token_ids": True}
    plain = httpx.post(srv.url + "/v1/completions", json=body).json()
    choice = plain["choices"][0]
    assert choice["token_ids"] == want and choice["prompt_token_ids"] == prompt
    assert choice["finish_reason"] == "stop" and choice["stop_reason"] == ct.FRAME_SEP
    assert choice["text"] == ct.render(TOK, want[:-1])  # vLLM's default: stop text left out
    plain = httpx.post(srv.url + "/v1/completions", json={**body, "include_stop_str_in_output": True}).json()
    assert plain["choices"][0]["text"] == ct.render(TOK, want)
    assert plain["usage"] == {"prompt_tokens": 3, "completion_tokens": len(want), "total_tokens": 3 + len(want),
                              "prompt_tokens_details": {"cached_tokens": 1}}

    pieces = list(remote.generate_pieces(prompt, stop_ids=STOPS, sampling=Sampling(max_tokens=100)))
    assert "".join(p.text for p in pieces) == ct.render(TOK, want)  # é arrives whole
    assert remote.stats.requests == 2 and remote.stats.reused_tokens == 2 and remote.stats.generated_tokens == 2 * len(want)


def test_raw_stream_format(served) -> None:
    srv, _ = served()
    body = {"prompt": [5], "max_tokens": 4, "stream": True, "return_token_ids": True, "stream_options": {"include_usage": True}}
    with httpx.stream("POST", srv.url + "/v1/completions", json=body) as resp:
        assert resp.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in resp.iter_lines() if line]
    assert all(line.startswith("data: ") for line in lines) and lines[-1] == "data: [DONE]"
    chunks = [json.loads(line[6:]) for line in lines[:-1]]
    ids = [i for c in chunks for ch in c["choices"] for i in ch["token_ids"]]
    assert ids == expected([5], [], 4)
    assert chunks[0]["choices"][0]["prompt_token_ids"] == [5]
    assert chunks[-2]["choices"][0]["finish_reason"] == "length"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 4


def test_stop_ids_and_max_tokens(served) -> None:
    srv, _ = served()
    remote = RemoteBackend(srv.url)
    assert list(remote.generate([0], stop_ids=[ct.ACTION_SEP], sampling=Sampling(max_tokens=100))) == expected([0], [ct.ACTION_SEP], 100)
    assert list(remote.generate([0], stop_ids=[], sampling=Sampling(max_tokens=5))) == SCRIPT[:5]
    assert list(remote.generate([0], stop_ids=[], sampling=Sampling(max_tokens=0))) == []
    plain = httpx.post(srv.url + "/v1/completions", json={"prompt": [0], "max_tokens": 0, "return_token_ids": True}).json()
    assert plain["choices"][0]["token_ids"] == [] and plain["choices"][0]["finish_reason"] == "length"


def test_api_key(served) -> None:
    srv, _ = served(api_key="k3y")
    resp = httpx.post(srv.url + "/v1/completions", json={"prompt": [1]})
    assert resp.status_code == 401 and resp.headers["www-authenticate"] == "Bearer"
    assert resp.json()["error"]["type"] == "authentication_error"
    assert httpx.get(srv.url + "/v1/models", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert httpx.get(srv.url + "/health").status_code == 200
    with pytest.raises(BackendError, match="HTTP 401.*check the API key"):
        list(RemoteBackend(srv.url, flavor="neuraldbg", model="scripted").generate([1], stop_ids=[], sampling=Sampling(max_tokens=2)))
    with pytest.raises(BackendError, match="HTTP 401"):
        RemoteBackend(srv.url, api_key="wrong").health()
    good = RemoteBackend(srv.url, api_key="k3y")
    assert good.health() == ["scripted"]
    assert list(good.generate([1], stop_ids=[], sampling=Sampling(max_tokens=2))) == expected([1], [], 2)


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"max_tokens": 3}, 400, "missing 'prompt'"),
        ({"prompt": []}, 400, "'prompt' is empty"),
        ({"prompt": [1, 128256]}, 400, r"prompt\[1\] = 128256 is out of the vocabulary range \(0..128255\)"),
        ({"prompt": [1, -2]}, 400, "out of the vocabulary range"),
        ({"prompt": [1, "a"]}, 400, "not an integer token id"),
        ({"prompt": [1], "max_tokens": -1}, 400, "'max_tokens' must be a non-negative integer"),
        ({"prompt": [1], "temperature": -0.5}, 400, "'temperature' must be a number >= 0"),
        ({"prompt": [1], "top_p": 0}, 400, r"'top_p' must be in \(0, 1\]"),
        ({"prompt": [1], "seed": "x"}, 400, "'seed' must be an integer"),
        ({"prompt": [1], "stop_token_ids": [999999]}, 400, "stop_token_ids"),
        ({"prompt": [1], "n": 2}, 400, "only n=1"),
        ({"prompt": [1], "stop": ["\n"]}, 400, "use stop_token_ids"),
        ({"prompt": [[1], [2]]}, 400, "only one prompt per request"),
        ({"prompt": [1], "stream_options": {"include_usage": True}}, 400, "only allowed with stream=true"),
        ({"prompt": [1], "model": "gpt-4"}, 404, "the model `gpt-4` does not exist"),
        ([1, 2], 400, "must be a JSON object"),
    ],
)
def test_bad_requests(served, body: Any, status: int, message: str) -> None:
    srv, backend = served()
    resp = httpx.post(srv.url + "/v1/completions", json=body)
    assert resp.status_code == status
    err = resp.json()["error"]
    assert err["code"] == status and err["type"] and re.search(message, err["message"])
    assert not backend.started.is_set()


def test_not_json_and_unknown_routes(served) -> None:
    srv, _ = served()
    resp = httpx.post(srv.url + "/v1/completions", content=b"{oops", headers={"Content-Type": "application/json"})
    assert resp.status_code == 400 and "not valid JSON" in resp.json()["error"]["message"]
    resp = httpx.get(srv.url + "/v1/chat/completions")
    assert resp.status_code == 404 and resp.json()["error"]["type"] == "not_found_error"
    assert httpx.get(srv.url + "/v1/completions").status_code == 405


def test_string_prompt_and_tokenizer_endpoints(served) -> None:
    srv, _ = served()
    plain = httpx.post(srv.url + "/v1/completions", json={"prompt": "ab<|frame_sep|>", "max_tokens": 1, "return_token_ids": True}).json()
    assert plain["choices"][0]["prompt_token_ids"] == [97, 98, ct.FRAME_SEP]
    remote = RemoteBackend(srv.url)
    tok = remote.tokenizer
    ids = tok.encode("x = '<|frame_sep|>'")
    assert not any(ct.is_special(i) for i in ids)  # source text never becomes a special token
    assert tok.decode(ids) == "x = '<|frame_sep|>'"
    resp = httpx.post(srv.url + "/detokenize", json={"tokens": [104, ct.FRAME_SEP, 105]}).json()
    assert resp["prompt"] == "h<|frame_sep|>i"


def test_one_generation_at_a_time(served) -> None:
    srv, backend = served(ScriptedBackend(delay=0.005))
    remote = RemoteBackend(srv.url)
    results: dict[int, list[int]] = {}
    errors: list[BaseException] = []

    def run(p: int) -> None:
        try:
            results[p] = list(remote.generate([p], stop_ids=[], sampling=Sampling(max_tokens=20)))
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=run, args=(p,)) for p in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    assert results == {p: expected([p], [], 20) for p in range(4)}
    assert backend.max_running == 1


def test_client_cancel_stops_the_generation_on_the_server(served) -> None:
    srv, backend = served(ScriptedBackend(delay=0.02))
    remote = RemoteBackend(srv.url)
    cancel = CancelToken()
    got: list[int] = []
    with pytest.raises(Cancelled):
        for i in remote.generate([0], stop_ids=[], sampling=Sampling(max_tokens=1000), cancel=cancel):
            got.append(i)
            if len(got) == 3:
                cancel.cancel()
    assert backend.cancelled.wait(5), "the server went on generating for a client that left"
    assert backend.stats.generated_tokens < 100
    # the worker is free again
    assert list(remote.generate([0], stop_ids=[], sampling=Sampling(max_tokens=3))) == SCRIPT[:3]


def test_plain_request_abandoned_by_its_client_is_cancelled(served) -> None:
    srv, backend = served(ScriptedBackend(delay=0.02))
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(srv.url + "/v1/completions", json={"prompt": [0], "max_tokens": 1000}, timeout=0.3)
    assert backend.cancelled.wait(5)


def test_waiting_request_abandoned_by_its_client_never_runs(served) -> None:
    srv, backend = served(ScriptedBackend(delay=0.02))
    remote = RemoteBackend(srv.url, flavor="neuraldbg", model="scripted")
    first = threading.Thread(target=lambda: list(remote.generate([0], stop_ids=[], sampling=Sampling(max_tokens=40))))
    first.start()
    assert backend.started.wait(5)
    with pytest.raises(httpx.ReadTimeout):  # queued behind the first, then gives up
        httpx.post(srv.url + "/v1/completions", json={"prompt": [7], "max_tokens": 5, "stream": True}, timeout=0.2)
    first.join(10)
    # jobs run one at a time in arrival order: once a later request has its answer, the abandoned one's
    # turn has come and gone; it never reached the backend
    assert list(remote.generate([9], stop_ids=[], sampling=Sampling(max_tokens=3))) == expected([9], [], 3)
    assert backend.stats.requests == 2


def test_backend_failure_is_reported(served) -> None:
    srv, _ = served(ScriptedBackend(fail_after=3))
    remote = RemoteBackend(srv.url)
    got: list[int] = []
    with pytest.raises(BackendError, match="generation failed: GPU fell off the bus"):
        for i in remote.generate([0], stop_ids=[], sampling=Sampling(max_tokens=10)):
            got.append(i)
    assert got == SCRIPT[:3]
    resp = httpx.post(srv.url + "/v1/completions", json={"prompt": [0], "max_tokens": 10})
    assert resp.status_code == 500 and "GPU fell off the bus" in resp.json()["error"]["message"]


def test_listen_address_checks(served, caplog: pytest.LogCaptureFixture) -> None:
    srv, _ = served()
    with pytest.raises(ModelServerError, match=f"cannot listen on 127.0.0.1:{srv.port}"):
        start_model_server(ScriptedBackend(), port=srv.port)
    with pytest.raises(ModelServerError, match="invalid port"):
        start_model_server(ScriptedBackend(), port=70000)
    with caplog.at_level(logging.WARNING, logger="neuraldbg.hosting.modelserver"):
        open_srv, _ = served(host="0.0.0.0")
    assert "reachable from other machines WITHOUT an API key" in caplog.text
    assert RemoteBackend(f"http://127.0.0.1:{open_srv.port}").health() == ["scripted"]


def test_text_decoder_holds_back_split_characters() -> None:
    from neuraldbg.hosting.wire import TextDecoder

    ids = ct.ids_from_text(TOK, "aé€<|frame_sep|>z")
    dec = TextDecoder(TOK, ct.SPECIAL_NAMES)
    pieces = [dec.feed([i]) for i in ids] + [dec.flush()]
    assert "\ufffd" not in "".join(pieces)
    assert "".join(pieces) == "aé€<|frame_sep|>z"


def test_http_side_imports_no_torch() -> None:
    import subprocess
    import sys

    code = ("import sys, neuraldbg.backends.remote, neuraldbg.hosting.modelserver; "
            "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


# -- text-only answers and prompt scoring ------------------------------------------------


def test_text_only_server_omits_token_ids_and_the_client_reads_the_text(served) -> None:
    srv, _ = served(text_only=True)
    prompt = [1, 2, 3]
    want = expected(prompt, STOPS, 100)
    body = {"prompt": prompt, "max_tokens": 100, "stop_token_ids": STOPS, "return_token_ids": True,
            "include_stop_str_in_output": True}
    choice = httpx.post(srv.url + "/v1/completions", json=body).json()["choices"][0]
    assert "token_ids" not in choice and "prompt_token_ids" not in choice
    assert choice["text"] == ct.render(TOK, want)
    chunks = [json.loads(line[6:]) for line in httpx.post(srv.url + "/v1/completions", json={**body, "stream": True}).text.splitlines()
              if line.startswith("data: {")]
    assert chunks and not any("token_ids" in c["choices"][0] for c in chunks if c["choices"])
    remote = RemoteBackend(srv.url, tokenizer=TOK)
    assert list(remote.generate(prompt, stop_ids=STOPS, sampling=Sampling(max_tokens=100))) == want
    assert remote.id_source == "text"


def test_prompt_logprobs_need_a_scoring_backend_and_no_stream(served) -> None:
    srv, _ = served()
    resp = httpx.post(srv.url + "/v1/completions", json={"prompt": [1, 2], "max_tokens": 1, "prompt_logprobs": 1})
    assert resp.status_code == 400 and "cannot score prompts" in resp.json()["error"]["message"]
    resp = httpx.post(srv.url + "/v1/completions", json={"prompt": [1, 2], "prompt_logprobs": 1, "stream": True})
    assert resp.status_code == 400 and "stream" in resp.json()["error"]["message"]
    resp = httpx.post(srv.url + "/v1/completions", json={"prompt": [1, 2], "prompt_logprobs": 5})
    assert resp.status_code == 400 and "0 or 1" in resp.json()["error"]["message"]
    with pytest.raises(BackendError, match=r"HTTP 400 .*cannot score prompts"):
        RemoteBackend(srv.url).score([1, 2, 3], start=1)

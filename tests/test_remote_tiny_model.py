"""Acceptance: RemoteBackend against ``neuraldbg model-server`` serving the
real tiny CWM through LocalBackend, on loopback."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import pytest

from neuraldbg.backends.base import BackendError, CancelToken, Cancelled, Sampling, ScoringBackend, TokenScore
from neuraldbg.backends.local import LocalBackend
from neuraldbg.backends.remote import RemoteBackend
from neuraldbg.hosting.modelserver import RunningModelServer, start_model_server
from neuraldbg.trace import cwm_tokens as ct

KEY = "tiny-secret"
SOURCE = "def f(xs):  # << START_OF_TRACE\n    total = 0\n    for x in xs:\n        total += x\n    return total\n"
GREEDY = Sampling(temperature=0.0, max_tokens=12)


class Recording:
    """Passes everything to the LocalBackend and notes what the server did
    with it: the cancellations the backend itself raised."""

    def __init__(self, inner: LocalBackend) -> None:
        self.inner = inner
        self.name = inner.name
        self.stats = inner.stats
        self.tokenizer = inner.tokenizer
        self.vocab_size = inner.vocab_size
        self.context_tokens = inner.context_tokens
        self.cancelled = threading.Event()

    def generate(self, prompt: Sequence[int], *, stop_ids: Sequence[int], sampling: Sampling,
                 cancel: CancelToken | None = None) -> Iterator[int]:
        try:
            yield from self.inner.generate(prompt, stop_ids=stop_ids, sampling=sampling, cancel=cancel)
        except Cancelled:
            self.cancelled.set()
            raise

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def local(tiny_cwm_dir) -> Iterator[LocalBackend]:
    backend = LocalBackend.load(tiny_cwm_dir, device_map="auto")
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def served(local: LocalBackend) -> Iterator[tuple[RunningModelServer, Recording]]:
    recording = Recording(local)
    with start_model_server(recording, api_key=KEY) as srv:
        yield srv, recording


@pytest.fixture
def remote(served) -> Iterator[RemoteBackend]:
    srv, _ = served
    backend = RemoteBackend(srv.url, api_key=KEY)
    yield backend
    backend.close()


def prompt_ids(local: LocalBackend) -> list[int]:
    return [ct.BOS, ct.TRACE_CONTEXT_START, *local.tokenizer.encode(SOURCE), ct.FRAME_SEP]


def plain(srv: RunningModelServer, body: dict[str, Any]) -> dict[str, Any]:
    resp = httpx.post(srv.url + "/v1/completions", json=body, headers={"Authorization": f"Bearer {KEY}"}, timeout=60)
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_streamed_ids_match_plain_answer_and_local_backend(served, remote, local) -> None:
    srv, _ = served
    prompt = prompt_ids(local)
    direct = list(local.generate(prompt, stop_ids=[], sampling=GREEDY))
    assert len(direct) == GREEDY.max_tokens
    streamed = list(remote.generate(prompt, stop_ids=[], sampling=GREEDY))
    answer = plain(srv, {"prompt": prompt, "max_tokens": GREEDY.max_tokens, "temperature": 0.0, "return_token_ids": True})
    assert streamed == direct
    assert answer["choices"][0]["token_ids"] == direct
    assert answer["choices"][0]["finish_reason"] == "length"
    assert remote.flavor == "neuraldbg" and remote.model == local.name and remote.id_source == "token_ids"

    # the text is the decode of the ids, special tokens written as names
    pieces = list(remote.generate_pieces(prompt, stop_ids=[], sampling=GREEDY))
    assert [i for p in pieces for i in p.ids] == direct
    assert "".join(p.text for p in pieces) == ct.render(local.tokenizer, direct)


def test_stop_id_and_max_tokens(remote, local) -> None:
    prompt = prompt_ids(local)
    free = list(local.generate(prompt, stop_ids=[], sampling=GREEDY))
    k = next(i for i in range(2, len(free)) if free[i] not in free[:i])
    assert list(remote.generate(prompt, stop_ids=[free[k]], sampling=GREEDY)) == free[: k + 1]
    assert list(remote.generate(prompt, stop_ids=[], sampling=Sampling(temperature=0.0, max_tokens=5))) == free[:5]


def test_prefix_reuse_is_reported(remote, local) -> None:
    prompt = prompt_ids(local)
    list(remote.generate(prompt, stop_ids=[], sampling=Sampling(temperature=0.0, max_tokens=3)))
    before = remote.stats.reused_tokens
    list(remote.generate(prompt + [ct.LINE_SEP], stop_ids=[], sampling=Sampling(temperature=0.0, max_tokens=3)))
    assert remote.stats.reused_tokens - before >= len(prompt) - 1  # the KV cache served the shared prefix
    assert remote.stats.prompt_tokens >= 2 * len(prompt)


def test_api_key_is_required(served, local) -> None:
    srv, recording = served
    requests_before = recording.stats.requests
    no_key = RemoteBackend(srv.url, flavor="neuraldbg", model=local.name)
    with pytest.raises(BackendError, match="HTTP 401"):
        list(no_key.generate(prompt_ids(local), stop_ids=[], sampling=GREEDY))
    assert recording.stats.requests == requests_before


def test_server_tokenizer_matches_local_tokenizer(remote, local) -> None:
    tok = remote.tokenizer  # no local tokenizer given: the server's /tokenize
    assert tok.encode(SOURCE) == local.tokenizer.encode(SOURCE)
    smuggled = tok.encode("s = '<|frame_sep|>'")
    assert not any(ct.is_special(i) for i in smuggled)
    assert tok.decode(smuggled) == "s = '<|frame_sep|>'"


def test_cancel_mid_stream_stops_the_model(served, remote, local) -> None:
    _, recording = served
    recording.cancelled.clear()
    cancel = CancelToken()
    got: list[int] = []
    with pytest.raises(Cancelled):
        for token in remote.generate(prompt_ids(local), stop_ids=[], sampling=Sampling(temperature=0.0, max_tokens=3000),
                                     cancel=cancel):
            got.append(token)
            if len(got) == 3:
                cancel.cancel()
    assert len(got) == 3
    assert recording.cancelled.wait(10), "the server-side backend never saw the cancel"
    # and the model is free for the next request
    assert len(list(remote.generate(prompt_ids(local), stop_ids=[], sampling=Sampling(temperature=0.0, max_tokens=2)))) == 2


def test_prompt_longer_than_the_context_is_a_clear_400(served, remote, local) -> None:
    too_long = [ct.BOS] + [100] * local.context_tokens
    with pytest.raises(BackendError, match=r"HTTP 400 .*the prompt has \d+ tokens; the model's context holds"):
        list(remote.generate(too_long, stop_ids=[], sampling=GREEDY))


class Scoring(Recording):
    """A TokenBackend + ScoringBackend over the tiny CWM: generation through
    the LocalBackend, scores from one real forward pass of its model (a
    stand-in for LocalBackend.score, coded against the protocol only)."""

    def score(self, ids: Sequence[int], *, start: int, cancel: CancelToken | None = None) -> list[TokenScore]:
        import torch

        if len(ids) > self.context_tokens:
            raise BackendError(f"{len(ids)} ids do not fit the context of {self.context_tokens}")
        with torch.no_grad():
            logits = self.inner.model(torch.tensor([list(ids)])).logits[0].float()
        logprobs = torch.log_softmax(logits, dim=-1)
        out = []
        for pos in range(start, len(ids)):
            row = logprobs[pos - 1]
            top = int(row.argmax())
            out.append(TokenScore(ids[pos], float(row[ids[pos]]), top, float(row[top])))
        return out


def test_remote_scores_match_the_model_position_by_position(local: LocalBackend) -> None:
    import torch

    ids = prompt_ids(local)
    start = 5
    with start_model_server(Scoring(local)) as srv:
        remote = RemoteBackend(srv.url)
        assert isinstance(remote, ScoringBackend)
        got = remote.score(ids, start=start)
        assert remote.flavor == "neuraldbg" and remote.max_model_len == local.context_tokens
        # the wire format as vLLM writes it
        answer = httpx.post(srv.url + "/v1/completions", json={"prompt": ids[:4], "max_tokens": 0, "prompt_logprobs": 1},
                            timeout=60).json()["choices"][0]["prompt_logprobs"]
        assert answer[0] is None and len(answer) == 4
        assert all(any(v["rank"] == 1 for v in entry.values()) and str(tok) in entry for entry, tok in zip(answer[1:], ids[1:4]))
        with pytest.raises(BackendError, match=r"^cannot score [\d,]+ tokens: the context of the model at .* holds [\d,]+$"):
            remote.score([ct.BOS] + [100] * local.context_tokens, start=1)
        # a client that does not know the context: the server refuses in one line
        blind = RemoteBackend(srv.url, flavor="neuraldbg", model=local.name)
        with pytest.raises(BackendError, match=r"HTTP 400 .*the model's context holds") as err:
            blind.score([ct.BOS] + [100] * local.context_tokens, start=1)
        assert "\n" not in str(err.value)
    # the reference: one causal pass per position, each on its prefix only
    assert len(got) == len(ids) - start
    for pos, s in zip(range(start, len(ids)), got):
        with torch.no_grad():
            row = torch.log_softmax(local.model(torch.tensor([ids[:pos]])).logits[0, -1].float(), dim=-1)
        assert s.token == ids[pos] and s.top == int(row.argmax())
        assert s.logprob == pytest.approx(float(row[ids[pos]]), abs=1e-3)
        assert s.top_logprob == pytest.approx(float(row.max()), abs=1e-3)

"""A TokenBackend over HTTP: vLLM, SGLang, or ``neuraldbg model-server``.

Token ids go out, token ids come back, streamed as server-sent events and
yielded as each chunk arrives. The client is synchronous (httpx) because the
language server runs backends in worker threads.

Request shapes (exactly what is sent; ``seed`` only when it is set, ``model``
only when known: given, or the first id of ``GET /v1/models``):

``flavor="vllm"`` -- ``POST {url}/v1/completions``::

    {"model": M, "prompt": [ids], "max_tokens": N, "temperature": T,
     "top_p": P, "seed": S, "stop_token_ids": [ids], "stream": true,
     "stream_options": {"include_usage": true},
     "return_token_ids": true,                      # vLLM >= 0.10.2: ids per chunk
     "logprobs": 0, "return_tokens_as_token_ids": true,  # older vLLM: ids as "token_id:N"
     "skip_special_tokens": false, "spaces_between_special_tokens": false,
     "include_stop_str_in_output": true}

``logprobs`` and ``return_tokens_as_token_ids`` are sent only until the
server has answered with ``token_ids``: vLLM before 0.14 turns speculative
decoding (the n-gram lookup of models/README.md) off for any request that
asks for logprobs.

``flavor="neuraldbg"`` -- ``POST {url}/v1/completions``: the vLLM body
without ``logprobs``, ``return_tokens_as_token_ids`` and
``spaces_between_special_tokens`` (the server always returns token ids when
asked and keeps special tokens in its text).

``flavor="sglang"`` -- SGLang's native ``POST {url}/generate`` (its
OpenAI-compatible endpoint returns text only)::

    {"input_ids": [ids], "stream": true,
     "sampling_params": {"max_new_tokens": N, "temperature": T, "top_p": P,
        "stop_token_ids": [ids], "skip_special_tokens": false,
        "spaces_between_special_tokens": false, "no_stop_trim": true,
        "sampling_seed": S}}

``flavor="auto"`` (the default) asks ``GET {url}/v1/models`` once and picks
by ``owned_by`` ("neuraldbg", "sglang", else "vllm").

Where the generated ids come from, in order (``id_source``, per request):
``"token_ids"`` (vLLM ``choices[0].token_ids``, SGLang ``output_ids``, in
full or cumulative form), ``"logprobs"`` (``logprobs.tokens`` written as
``token_id:N``), and last ``"text"``: the text is converted back to ids by
:mod:`neuraldbg.backends.remote_text` (special names from the map
``special_tokens``, CWM's by default), which never turns user text into a
special id: a stop token's name counts only at the very end, and a name the
prompt also spells as text stays text, so a frame that needed it comes out
flagged by the trace parser. Re-encoded text may split differently from
what the model sampled, but decodes to the same text, which is all the
trace parser needs.
A stop id that ended the request but was trimmed from the text is restored
from ``stop_reason`` (vLLM) or ``matched_stop`` (SGLang).

The tokenizer (``backend.tokenizer``, which the codec also uses to build
prompts): the one given (a TokenizerLike, or a folder with a Hugging Face
tokenizer), else :class:`ServerTokenizer`, which asks the server's
``/tokenize`` and ``/detokenize`` (``/v1/...`` for SGLang).

Stats: ``prompt_tokens`` and ``generated_tokens`` are counted here;
``reused_tokens`` (and ``prefilled_tokens`` = prompt - reused) come from the
server's usage: ``prompt_tokens_details.cached_tokens`` (vLLM reports it
only with ``--enable-prompt-tokens-details``) or SGLang's
``meta_info.cached_tokens``. ``reports_cached_tokens`` says whether the
last finished request carried that number: False means "unknown", not "0".

Scoring (:meth:`RemoteBackend.score`, the ScoringBackend protocol): one
teacher-forced prefill, ``prompt_logprobs`` on vLLM and neuraldbg servers,
``/generate`` with ``return_logprob`` on SGLang
(:mod:`neuraldbg.backends.remote_scoring`). Ids longer than the context
(``context_tokens``, else the ``max_model_len`` of ``/v1/models``) are
refused before anything is sent.

Failures are :class:`BackendError` with one clear line. Connection errors,
HTTP 5xx and 429 are retried with exponential backoff, but only before any
token was yielded: a request whose tokens were already streamed is never
sent again. Cancellation is checked between chunks (so a server that is
still prefilling is left at its first token, or at the read timeout); it
closes the response (the server sees the disconnect and stops) and raises
:class:`Cancelled`. A client that stops iterating early closes it too.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import httpx
from httpx_sse import EventSource

from neuraldbg.backends.base import BackendError, BackendStats, CancelToken, Cancelled, Sampling, TokenScore
from neuraldbg.backends.remote_scoring import parse_sglang_scores, parse_vllm_scores, sglang_score_body, vllm_score_body
from neuraldbg.backends.remote_text import PromptNames, TextToIds
from neuraldbg.backends.remote_tokenizer import ServerTokenizer
from neuraldbg.trace.tokenizer import TokenizerLike

__all__ = ["RemoteBackend", "ServerTokenizer", "GeneratedPiece", "FLAVORS"]

log = logging.getLogger(__name__)

Flavor = Literal["vllm", "sglang", "neuraldbg", "auto"]
IdSource = Literal["token_ids", "logprobs", "text"]
FLAVORS: tuple[str, ...] = ("vllm", "sglang", "neuraldbg", "auto")

_MAX_RETRY_AFTER_S = 30.0
_ERROR_SNIPPET = 300


@dataclass(frozen=True)
class GeneratedPiece:
    """What one stream chunk contributed: ids (after the contract's cut at a
    stop id or ``max_tokens``), the text the server sent, and where the ids
    came from."""

    ids: tuple[int, ...]
    text: str
    source: IdSource


@dataclass
class _Delta:
    """One parsed chunk, engine-neutral."""

    ids: list[int] | None = None
    source: IdSource | None = None
    text: str = ""
    finish_reason: str | None = None
    stop_id: int | None = None
    prompt_tokens: int | None = None
    cached_tokens: int | None = None


class _Retryable(Exception):
    """An attempt failed in a way that may be retried (nothing was yielded)."""

    def __init__(self, error: BackendError, retry_after: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


# -- chunk parsers -------------------------------------------------------------


def _as_ids(value: Any, what: str) -> list[int]:
    if not isinstance(value, list) or not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in value):
        raise BackendError(f"malformed stream chunk: {what} is not a list of token ids")
    return list(value)


def _raise_if_error(obj: dict[str, Any], where: str) -> None:
    err = obj.get("error")
    if err is None and obj.get("object") == "error":  # older vLLM / SGLang shape
        err = obj
    if err is None:
        return
    msg = err.get("message") if isinstance(err, dict) else err
    raise BackendError(f"model server at {where} failed: {str(msg)[:_ERROR_SNIPPET]}")


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _read_usage(usage: Any, delta: _Delta) -> None:
    if not isinstance(usage, dict):
        return
    delta.prompt_tokens = _int_or_none(usage.get("prompt_tokens"))
    details = usage.get("prompt_tokens_details")
    if isinstance(details, dict):
        delta.cached_tokens = _int_or_none(details.get("cached_tokens"))


class _OpenAIChunkParser:
    """``/v1/completions`` chunks (vLLM, neuraldbg, and OpenAI-shaped others)."""

    def __init__(self, where: str) -> None:
        self._where = where

    def parse(self, obj: dict[str, Any]) -> _Delta:
        _raise_if_error(obj, self._where)
        delta = _Delta()
        _read_usage(obj.get("usage"), delta)
        choices = obj.get("choices")
        if not isinstance(choices, list):
            raise BackendError("malformed stream chunk: no 'choices' list")
        if not choices:
            return delta  # the usage-only chunk
        choice = choices[0]
        if not isinstance(choice, dict):
            raise BackendError("malformed stream chunk: a choice is not an object")
        text = choice.get("text") or ""
        if not isinstance(text, str):
            raise BackendError("malformed stream chunk: 'text' is not a string")
        delta.text = text
        token_ids = choice.get("token_ids")
        if token_ids is not None:
            delta.ids, delta.source = _as_ids(token_ids, "'token_ids'"), "token_ids"
        else:
            ids = self._ids_from_logprobs(choice.get("logprobs"))
            if ids is not None:
                delta.ids, delta.source = ids, "logprobs"
        finish = choice.get("finish_reason")
        if finish is not None:
            delta.finish_reason = str(finish)
            delta.stop_id = _int_or_none(choice.get("stop_reason", choice.get("matched_stop")))
            if delta.finish_reason in ("error", "abort"):
                raise BackendError(f"model server at {self._where} aborted the generation (finish_reason {finish!r})")
        return delta

    @staticmethod
    def _ids_from_logprobs(logprobs: Any) -> list[int] | None:
        if not isinstance(logprobs, dict):
            return None
        tokens = logprobs.get("tokens")
        if not isinstance(tokens, list):
            return None
        ids: list[int] = []
        for tok in tokens:
            if not (isinstance(tok, str) and tok.startswith("token_id:") and tok[9:].isdigit()):
                return None  # tokens as text: the server ignored return_tokens_as_token_ids
            ids.append(int(tok[9:]))
        return ids


class _SGLangChunkParser:
    """SGLang ``/generate`` chunks: ``output_ids`` and ``text`` are cumulative
    unless the server runs with ``--incremental-streaming-output``; the
    cumulative ``meta_info.completion_tokens`` tells which."""

    def __init__(self, where: str) -> None:
        self._where = where
        self._n_ids = 0
        self._text_len = 0

    def parse(self, obj: dict[str, Any]) -> _Delta:
        _raise_if_error(obj, self._where)
        meta = obj.get("meta_info")
        if not isinstance(meta, dict):
            raise BackendError("malformed stream chunk: no 'meta_info' object")
        delta = _Delta()
        ids = obj.get("output_ids")
        text = obj.get("text") or ""
        if not isinstance(text, str):
            raise BackendError("malformed stream chunk: 'text' is not a string")
        total = _int_or_none(meta.get("completion_tokens"))
        if ids is not None:
            ids = _as_ids(ids, "'output_ids'")
            cumulative = len(ids) == total if total is not None else len(ids) >= self._n_ids > 0
            if cumulative and self._n_ids:
                ids = ids[self._n_ids:]
            if cumulative:
                text = text[self._text_len:]
            self._n_ids += len(ids)
            self._text_len += len(text)
            delta.ids, delta.source = ids, "token_ids"
        delta.text = text
        delta.prompt_tokens = _int_or_none(meta.get("prompt_tokens"))
        delta.cached_tokens = _int_or_none(meta.get("cached_tokens"))
        finish = meta.get("finish_reason")
        if isinstance(finish, dict):
            kind = str(finish.get("type"))
            if kind == "abort":
                raise BackendError(
                    f"model server at {self._where} aborted the generation: {str(finish.get('message', ''))[:_ERROR_SNIPPET]}"
                )
            delta.finish_reason = kind
            delta.stop_id = _int_or_none(finish.get("matched"))
        elif finish is not None:
            delta.finish_reason = str(finish)
        return delta


def _load_tokenizer(path: str) -> TokenizerLike:
    from neuraldbg.backends.tiny_tokenizer import HFTokenizerAdapter, load_tokenizer  # transformers: only here

    try:
        return HFTokenizerAdapter(load_tokenizer(path))
    except (OSError, ValueError) as e:
        raise BackendError(f"cannot load the tokenizer from {path}: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None


def _default_specials() -> Mapping[str, int]:
    from neuraldbg.trace.cwm_tokens import SPECIAL_IDS

    return SPECIAL_IDS


# -- the backend ---------------------------------------------------------------------


def _normalize_url(url: str) -> str:
    url = url.strip().rstrip("/")
    if url.endswith("/v1"):  # people paste OpenAI base URLs
        url = url[:-3]
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as e:
        raise BackendError(f"invalid model server URL {url!r}: {e}") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise BackendError(f"invalid model server URL {url!r}: expected http://HOST:PORT or https://HOST:PORT")
    return url


def _error_message(resp: httpx.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        text = resp.text.strip()
        return text[:_ERROR_SNIPPET] or resp.reason_phrase
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict):
            for key in ("message", "detail", "msg"):
                if err.get(key):
                    return str(err[key])[:_ERROR_SNIPPET]
        elif err:
            return str(err)[:_ERROR_SNIPPET]
    return json.dumps(body)[:_ERROR_SNIPPET]


def _retry_after(resp: httpx.Response) -> float | None:
    value = resp.headers.get("retry-after")
    try:
        return min(float(value), _MAX_RETRY_AFTER_S) if value is not None else None
    except ValueError:
        return None  # an HTTP date: ignore, the backoff applies


def _sleep(seconds: float, cancel: CancelToken | None) -> None:
    end = time.monotonic() + seconds
    while True:
        if cancel is not None:
            cancel.raise_if_cancelled()
        left = end - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(left, 0.05))


class RemoteBackend:
    """Generates through a model server's HTTP API (see the module docstring)."""

    def __init__(
        self,
        url: str,
        *,
        model: str | None = None,
        api_key: str | None = None,
        flavor: Flavor = "auto",
        tokenizer: TokenizerLike | str | os.PathLike[str] | None = None,
        special_tokens: Mapping[str, int] | None = None,
        timeout: float = 120.0,
        connect_timeout: float = 5.0,
        retries: int = 3,
        backoff: float = 0.5,
        context_tokens: int | None = None,
    ) -> None:
        if flavor not in FLAVORS:
            raise BackendError(f"unknown remote flavor {flavor!r}: expected one of {', '.join(FLAVORS)}")
        if timeout <= 0 or connect_timeout <= 0 or retries < 0 or backoff < 0:
            raise BackendError("remote backend: timeouts must be positive, retries and backoff non-negative")
        self.url = _normalize_url(url)
        self.model = model
        self.requested_flavor: Flavor = flavor
        self.flavor: str | None = None if flavor == "auto" else flavor  # resolved on first use
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.retries = retries
        self.backoff = backoff
        self.id_source: IdSource | None = None  # where the last request's ids came from
        # Whether the server's usage says how many prompt tokens its prefix
        # cache served: None until a request finished; False means the
        # counters cannot tell (vLLM without --enable-prompt-tokens-details),
        # not that nothing was reused.
        self.reports_cached_tokens: bool | None = None
        self.max_model_len: int | None = context_tokens  # given, else the server's model card
        # vLLM skips speculative decoding for requests asking for logprobs
        # (before 0.14), so the logprobs id fallback is asked for only until
        # the server is seen to send token_ids itself.
        self._server_sends_ids = False
        self._prompt_names: PromptNames | None = None
        self.stats = BackendStats()
        self.name = f"{model} @ {self.url}" if model else f"model server {self.url}"
        self._specials = special_tokens
        self._tokenizer: TokenizerLike | None = None
        self._tokenizer_path: str | None = None
        if isinstance(tokenizer, (str, os.PathLike)):
            self._tokenizer_path = os.fspath(tokenizer)
        else:
            self._tokenizer = tokenizer
        self._resolved = flavor != "auto" and (model is not None or flavor == "sglang")
        self._lock = threading.Lock()
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            follow_redirects=False,
        )

    # -- public API --------------------------------------------------------------

    @property
    def tokenizer(self) -> TokenizerLike:
        """The tokenizer given (an object, or a folder holding a Hugging Face
        tokenizer, loaded on first use), else the server's (``/tokenize``,
        ``/detokenize``)."""
        with self._lock:
            if self._tokenizer is None and self._tokenizer_path is not None:
                self._tokenizer = _load_tokenizer(self._tokenizer_path)
            if self._tokenizer is None:
                self._tokenizer = ServerTokenizer(self)
            return self._tokenizer

    @property
    def special_tokens(self) -> Mapping[str, int]:
        if self._specials is None:
            self._specials = _default_specials()
        return self._specials

    def health(self) -> list[str]:
        """Model ids the server offers (``GET /v1/models``; ``[]`` when it only
        answers ``/health``). Raises :class:`BackendError` when unreachable."""
        cards = self._models()
        if not self._resolved:
            self._resolve(cards)
        if cards is None:
            self._get("/health")
            return []
        return [str(c.get("id")) for c in cards if isinstance(c, dict) and c.get("id") is not None]

    def generate(
        self,
        prompt: Sequence[int],
        *,
        stop_ids: Sequence[int],
        sampling: Sampling,
        cancel: CancelToken | None = None,
    ) -> Iterator[int]:
        for piece in self.generate_pieces(prompt, stop_ids=stop_ids, sampling=sampling, cancel=cancel):
            yield from piece.ids

    def generate_pieces(
        self,
        prompt: Sequence[int],
        *,
        stop_ids: Sequence[int],
        sampling: Sampling,
        cancel: CancelToken | None = None,
    ) -> Iterator[GeneratedPiece]:
        """As :meth:`generate`, one :class:`GeneratedPiece` per stream chunk
        (ids and the server's text: a consumer may read either)."""
        prompt = list(prompt)
        if not prompt or not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in prompt):
            raise BackendError("remote backend: the prompt must be a non-empty list of token ids")
        if self._client.is_closed:
            raise BackendError(f"the remote backend for {self.url} is closed")
        if sampling.max_tokens <= 0:
            return
        if cancel is not None:
            cancel.raise_if_cancelled()
        self.stats.requests += 1
        self.stats.prompt_tokens += len(prompt)
        attempt = 0
        while True:
            try:
                yield from self._attempt(prompt, list(stop_ids), sampling, cancel)
                return
            except _Retryable as r:
                if attempt >= self.retries:
                    raise r.error from None
                delay = max(self.backoff * (2**attempt), r.retry_after or 0.0)
                attempt += 1
                log.warning("%s; retrying in %.2g s (%d/%d)", r.error, delay, attempt, self.retries)
                _sleep(delay, cancel)

    def score(self, ids: Sequence[int], *, start: int, cancel: CancelToken | None = None) -> list[TokenScore]:
        """:class:`~neuraldbg.backends.base.ScoringBackend`: one teacher-forced
        prefill on the server (see :mod:`neuraldbg.backends.remote_scoring`
        for the requests); SGLang's native dialect for an SGLang server,
        vLLM's ``prompt_logprobs`` for the others."""
        ids = list(ids)
        if not ids or not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in ids):
            raise BackendError("remote backend: the ids to score must be a non-empty list of token ids")
        if not 1 <= start <= len(ids):
            raise BackendError(f"remote backend: scoring start {start} is outside 1..{len(ids)}")
        if self._client.is_closed:
            raise BackendError(f"the remote backend for {self.url} is closed")
        if cancel is not None:
            cancel.raise_if_cancelled()
        self._with_retries(self._resolve)
        # vLLM needs room for the one token it generates; ours generates none.
        extra = 0 if self.flavor == "neuraldbg" else 1
        if self.max_model_len is not None and len(ids) + extra > self.max_model_len:
            raise BackendError(f"cannot score {len(ids):,} tokens: the context of the model at {self.url} holds {self.max_model_len:,}")
        if start == len(ids):
            return []
        self.stats.requests += 1
        self.stats.prompt_tokens += len(ids)
        if self.flavor == "sglang":
            obj = self._post_json("/generate", sglang_score_body(ids, start))
            scores = parse_sglang_scores(obj, ids, start, self.url)
        else:
            obj = self._post_json("/v1/completions", vllm_score_body(ids, self.model, max_tokens=extra))
            scores = parse_vllm_scores(obj, ids, start, self.url)
        if cancel is not None:
            cancel.raise_if_cancelled()
        return scores

    def close(self) -> None:
        self._client.close()

    def _text_converter(self, prompt: Sequence[int], stop_ids: set[int]) -> TextToIds:
        """The text -> ids converter for one text-only answer to ``prompt``."""
        if self._prompt_names is None:
            self._prompt_names = PromptNames(self.special_tokens)
        ambiguous = self._prompt_names.find(prompt, self.tokenizer)
        return TextToIds(self.special_tokens, self.tokenizer, stop_ids=stop_ids, ambiguous=ambiguous)

    def __repr__(self) -> str:
        return f"RemoteBackend({self.url!r}, flavor={self.flavor or self.requested_flavor!r}, model={self.model!r})"

    # -- one attempt ----------------------------------------------------------------

    def _attempt(
        self, prompt: list[int], stop_ids: list[int], sampling: Sampling, cancel: CancelToken | None
    ) -> Iterator[GeneratedPiece]:
        self._resolve()
        path, body = self._request_body(prompt, stop_ids, sampling)
        resp = self._open(path, body)
        try:
            yield from self._read(resp, prompt, stop_ids, sampling.max_tokens, cancel)
        finally:
            resp.close()

    def _request_body(self, prompt: list[int], stop_ids: list[int], sampling: Sampling) -> tuple[str, dict[str, Any]]:
        if self.flavor == "sglang":
            params: dict[str, Any] = {
                "max_new_tokens": sampling.max_tokens,
                "temperature": sampling.temperature,
                "top_p": sampling.top_p,
                "stop_token_ids": stop_ids,
                "skip_special_tokens": False,
                "spaces_between_special_tokens": False,
                "no_stop_trim": True,
            }
            if sampling.seed is not None:
                params["sampling_seed"] = sampling.seed
            return "/generate", {"input_ids": prompt, "sampling_params": params, "stream": True}
        body: dict[str, Any] = {}
        if self.model is not None:
            body["model"] = self.model
        body.update(
            prompt=prompt,
            max_tokens=sampling.max_tokens,
            temperature=sampling.temperature,
            top_p=sampling.top_p,
        )
        if sampling.seed is not None:
            body["seed"] = sampling.seed
        body.update(
            stop_token_ids=stop_ids,
            stream=True,
            stream_options={"include_usage": True},
            return_token_ids=True,
        )
        if self.flavor == "vllm":
            if not self._server_sends_ids:
                body.update(logprobs=0, return_tokens_as_token_ids=True)
            body.update(spaces_between_special_tokens=False)
        body.update(skip_special_tokens=False, include_stop_str_in_output=True)
        return "/v1/completions", body

    def _open(self, path: str, body: dict[str, Any]) -> httpx.Response:
        request = self._client.build_request(
            "POST", self.url + path, json=body, headers={"Accept": "text/event-stream", "Cache-Control": "no-store"}
        )
        try:
            resp = self._client.send(request, stream=True)
        except httpx.TimeoutException as e:
            raise self._timeout_error(e, None) from None
        except httpx.TransportError as e:
            raise _Retryable(BackendError(f"cannot reach model server at {self.url}: {e or type(e).__name__}")) from None
        except httpx.HTTPError as e:
            raise BackendError(f"request to model server at {self.url} failed: {e or type(e).__name__}") from None
        if resp.status_code == 200:
            return resp
        try:
            resp.read()
        except httpx.HTTPError:
            pass
        finally:
            resp.close()
        raise self._status_error(resp, path)

    def _read(
        self, resp: httpx.Response, prompt: list[int], stop_ids: list[int], max_tokens: int, cancel: CancelToken | None
    ) -> Iterator[GeneratedPiece]:
        ctype = resp.headers.get("content-type", "")
        if "text/event-stream" not in ctype:
            if "json" in ctype:  # a server (or proxy) that ignored stream=true: one complete answer
                yield from self._read_whole(resp, prompt, stop_ids, max_tokens, cancel)
                return
            raise BackendError(f"model server at {self.url} answered with {ctype or 'no content type'!r} instead of an event stream")
        parser = _SGLangChunkParser(self.url) if self.flavor == "sglang" else _OpenAIChunkParser(self.url)
        state = _StreamState(self, prompt, stop_ids, max_tokens)
        events = EventSource(resp).iter_sse()
        try:
            for sse in events:
                if cancel is not None and cancel.cancelled:
                    raise Cancelled()
                data = sse.data.strip()
                if not data:
                    continue
                if data == "[DONE]":
                    state.done = True
                    break
                delta = parser.parse(self._json(data))
                piece = state.take(delta)
                if state.finished or state.cut:
                    # Stats first: a consumer may stop reading after the stop id.
                    if state.finished:
                        self._drain(events, state, parser)
                    state.record_stats()
                    if piece is not None:
                        yield piece
                    return  # on a cut, closing the response stops the server
                if piece is not None:
                    yield piece
        except httpx.TimeoutException as e:
            raise self._timeout_error(e, state.produced) from None
        except httpx.TransportError as e:
            err = BackendError(f"connection to model server at {self.url} broke: {e or type(e).__name__}")
            if state.produced == 0:
                raise _Retryable(err) from None
            raise BackendError(f"{err} after {state.produced} tokens (not re-sent)") from None
        except httpx.HTTPError as e:  # e.g. a body that does not decode
            raise BackendError(f"bad stream from model server at {self.url}: {e or type(e).__name__}") from None
        why = "[DONE] without a finish_reason" if state.done else "no finish_reason and no [DONE]"
        raise BackendError(f"model server at {self.url} ended the stream early ({why}; truncated after {state.produced} tokens)")

    def _read_whole(
        self, resp: httpx.Response, prompt: list[int], stop_ids: list[int], max_tokens: int, cancel: CancelToken | None
    ) -> Iterator[GeneratedPiece]:
        try:
            resp.read()
        except httpx.TimeoutException as e:
            raise self._timeout_error(e, 0) from None
        if cancel is not None:
            cancel.raise_if_cancelled()
        parser = _SGLangChunkParser(self.url) if self.flavor == "sglang" else _OpenAIChunkParser(self.url)
        state = _StreamState(self, prompt, stop_ids, max_tokens)
        obj = self._json(resp.text)
        piece = state.take(parser.parse(obj))
        if not (state.finished or state.cut):
            raise BackendError(f"model server at {self.url} returned a completion without a finish_reason")
        state.record_stats()
        if piece is not None:
            yield piece

    def _drain(self, events: Iterator[Any], state: "_StreamState", parser: Any) -> None:
        """After the finish chunk: read the usage chunk and [DONE] (both sent
        at once), so stats are complete before the last ids go out."""
        try:
            for sse in events:
                data = sse.data.strip()
                if data == "[DONE]":
                    state.done = True
                    return
                if data:
                    state.take_usage(parser.parse(self._json(data)))
        except (httpx.HTTPError, BackendError) as e:
            log.debug("ignoring a failure after the finish chunk: %s", e)

    def _json(self, data: str) -> dict[str, Any]:
        try:
            obj = json.loads(data)
        except ValueError:
            raise BackendError(f"model server at {self.url} sent a malformed stream chunk (not JSON): {data[:120]!r}") from None
        if not isinstance(obj, dict):
            raise BackendError(f"model server at {self.url} sent a malformed stream chunk (not a JSON object): {data[:120]!r}")
        return obj

    # -- errors -----------------------------------------------------------------------

    def _timeout_error(self, e: httpx.TimeoutException, produced: int | None) -> BackendError | _Retryable:
        if isinstance(e, httpx.ConnectTimeout):
            return _Retryable(BackendError(f"connecting to model server at {self.url} timed out after {self.connect_timeout:g} s"))
        if produced is None:
            return BackendError(f"model server at {self.url} timed out after {self.timeout:g} s waiting for a response")
        return BackendError(
            f"model server at {self.url} timed out after {self.timeout:g} s waiting for the next token ({produced} received)"
        )

    def _status_error(self, resp: httpx.Response, path: str) -> BackendError | _Retryable:
        code = resp.status_code
        msg = _error_message(resp)
        err = BackendError(f"model server at {self.url} answered HTTP {code} {resp.reason_phrase} on {path}: {msg}")
        if code in (401, 403):
            err = BackendError(f"model server at {self.url} refused the request (HTTP {code}): {msg}; check the API key")
        if code >= 500 or code == 429:
            return _Retryable(err, _retry_after(resp))
        return err

    # -- small requests (models, health, tokenizer) ---------------------------------

    def _resolve(self, cards: list[Any] | None | Literal[False] = False) -> None:
        """Pick the flavor and the model name from ``GET /v1/models`` (once)."""
        if self._resolved:
            return
        if cards is False:
            cards = self._models_once()
        owner = ""
        if cards:
            first = cards[0] if isinstance(cards[0], dict) else {}
            owner = str(first.get("owned_by", "")).lower()
            if self.max_model_len is None and _int_or_none(first.get("max_model_len")):
                self.max_model_len = int(first["max_model_len"])
            if self.model is None and first.get("id") is not None:
                self.model = str(first["id"])
                self.name = f"{self.model} @ {self.url}"
        if self.flavor is None:
            self.flavor = owner if owner in ("neuraldbg", "sglang") else "vllm"
            log.info("model server %s: flavor %s, model %s", self.url, self.flavor, self.model)
        self._resolved = True

    def _resolve_for_tokenizer(self) -> None:
        self._with_retries(self._resolve)

    def _models_once(self) -> list[Any] | None:
        try:
            resp = self._client.get(self.url + "/v1/models")
        except httpx.TimeoutException as e:
            raise self._timeout_error(e, None) from None
        except httpx.TransportError as e:
            raise _Retryable(BackendError(f"cannot reach model server at {self.url}: {e or type(e).__name__}")) from None
        if resp.status_code == 404:
            return None
        if resp.status_code != 200:
            raise self._status_error(resp, "/v1/models")
        try:
            data = resp.json().get("data")
        except (ValueError, AttributeError):
            log.debug("model server at %s: /v1/models is not a model list; ignored", self.url)
            return None
        return data if isinstance(data, list) else []

    def _models(self) -> list[Any] | None:
        return self._with_retries(self._models_once)

    def _get(self, path: str) -> httpx.Response:
        def once() -> httpx.Response:
            try:
                resp = self._client.get(self.url + path)
            except httpx.TimeoutException as e:
                raise self._timeout_error(e, None) from None
            except httpx.TransportError as e:
                raise _Retryable(BackendError(f"cannot reach model server at {self.url}: {e or type(e).__name__}")) from None
            if resp.status_code != 200:
                raise self._status_error(resp, path)
            return resp

        return self._with_retries(once)

    def _post_json(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        def once() -> dict[str, Any]:
            try:
                resp = self._client.post(self.url + path, json=body)
            except httpx.TimeoutException as e:
                raise self._timeout_error(e, None) from None
            except httpx.TransportError as e:
                raise _Retryable(BackendError(f"cannot reach model server at {self.url}: {e or type(e).__name__}")) from None
            if resp.status_code != 200:
                raise self._status_error(resp, path)
            try:
                obj = resp.json()
            except ValueError:
                obj = None
            if not isinstance(obj, dict):
                raise BackendError(f"model server at {self.url} sent a malformed answer on {path}")
            return obj

        return self._with_retries(once)

    def _with_retries(self, fn: Any) -> Any:
        attempt = 0
        while True:
            try:
                return fn()
            except _Retryable as r:
                if attempt >= self.retries:
                    raise r.error from None
                delay = max(self.backoff * (2**attempt), r.retry_after or 0.0)
                attempt += 1
                log.warning("%s; retrying in %.2g s (%d/%d)", r.error, delay, attempt, self.retries)
                time.sleep(delay)


class _StreamState:
    """Per-request bookkeeping: the contract's cut (a stop id, ``max_tokens``),
    the text fallback, and the usage the server reported."""

    def __init__(self, backend: RemoteBackend, prompt: list[int], stop_ids: list[int], max_tokens: int) -> None:
        self._backend = backend
        self._prompt = prompt
        self._stop = set(stop_ids)
        self._max = max_tokens
        self._text: TextToIds | None = None
        self.produced = 0
        self.last_id: int | None = None
        self.finished = False  # the server said why it stopped
        self.cut = False  # we stopped at a stop id / max_tokens before the server did
        self.done = False
        self.prompt_tokens: int | None = None
        self.cached_tokens: int | None = None

    def take(self, delta: _Delta) -> GeneratedPiece | None:
        self.take_usage(delta)
        source = delta.source
        if delta.ids is not None:
            ids = delta.ids
        elif delta.text:
            source = "text"
            ids = self._text_to_ids().feed(delta.text)
        else:
            ids = []
        if delta.finish_reason is not None:
            self.finished = True
            if self._text is not None:
                ids = ids + self._text.flush(delta.finish_reason)
                self._log_kept_as_text()
            stop = delta.stop_id
            last = ids[-1] if ids else self.last_id
            if delta.finish_reason == "stop" and stop is not None and stop in self._stop and last != stop:
                ids = ids + [stop]  # trimmed from the text (or never sent as an id)
        out: list[int] = []
        for token_id in ids:
            if self.produced >= self._max or (self.last_id is not None and self.last_id in self._stop):
                self.cut = not self.finished
                break
            out.append(token_id)
            self.produced += 1
            self.last_id = token_id
        if not self.finished and self.last_id is not None and (self.last_id in self._stop or self.produced >= self._max):
            self.cut = True
        if source == "token_ids":
            self._backend._server_sends_ids = True
        if source is not None and self._backend.id_source != source and (out or delta.text):
            self._backend.id_source = source
        self._backend.stats.generated_tokens += len(out)
        if not out and not delta.text:
            return None
        return GeneratedPiece(tuple(out), delta.text, source or self._backend.id_source or "text")

    def take_usage(self, delta: _Delta) -> None:
        if delta.prompt_tokens is not None:
            self.prompt_tokens = delta.prompt_tokens
        if delta.cached_tokens is not None:
            self.cached_tokens = delta.cached_tokens

    def record_stats(self) -> None:
        prompt = self.prompt_tokens if self.prompt_tokens is not None else 0
        cached = min(self.cached_tokens or 0, prompt) if prompt else (self.cached_tokens or 0)
        stats = self._backend.stats
        self._backend.reports_cached_tokens = self.cached_tokens is not None
        stats.reused_tokens += cached
        if self.prompt_tokens is not None:
            stats.prefilled_tokens += max(prompt - cached, 0)

    def _text_to_ids(self) -> TextToIds:
        if self._text is None:
            self._text = self._backend._text_converter(self._prompt, self._stop)
        return self._text

    def _log_kept_as_text(self) -> None:
        assert self._text is not None
        if self._text.kept_as_text:
            names = ", ".join(sorted(self._text.kept_as_text))
            log.warning("model server %s returned text only: %s also occurs as text in the prompt, so it was kept as "
                        "text (a frame that needed it as a separator comes out flagged)", self._backend.url, names)

""":class:`RemoteBackend`: the TokenBackend and ScoringBackend over a model
server's HTTP API (the protocol is described in :mod:`neuraldbg.backends.remote`)."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal

from neuraldbg.backends.base import BackendError, BackendStats, CancelToken, Sampling, TokenScore
from neuraldbg.backends.remote.dialects import IdSource, generation_request, int_or_none, is_token_ids
from neuraldbg.backends.remote.scoring import parse_sglang_scores, parse_vllm_scores, sglang_score_body, vllm_score_body
from neuraldbg.backends.remote.stream import GeneratedPiece, GenerationRequest, read_pieces
from neuraldbg.backends.remote.text import PromptNames, TextToIds
from neuraldbg.backends.remote.tokenizer import ServerTokenizer
from neuraldbg.backends.remote.transport import Retryable, Transport, cancellable_sleep
from neuraldbg.trace.tokenizer import TokenizerLike

log = logging.getLogger(__name__)

Flavor = Literal["vllm", "sglang", "neuraldbg", "auto"]
FLAVORS: tuple[str, ...] = ("vllm", "sglang", "neuraldbg", "auto")


class RemoteBackend:
    """Generates through a model server's HTTP API (see :mod:`neuraldbg.backends.remote`).

    ``stop_ids`` (a profile's end-of-turn ids) are sent, and honoured, with
    every request besides the request's own; ``context_tokens`` bounds what
    :meth:`score` sends (else the server's ``max_model_len``)."""

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
        stop_ids: Sequence[int] = (),
    ) -> None:
        if flavor not in FLAVORS:
            raise BackendError(f"unknown remote flavor {flavor!r}: expected one of {', '.join(FLAVORS)}")
        if not is_token_ids(stop_ids):
            raise BackendError(f"remote backend: stop_ids must be token ids, got {stop_ids!r}")
        self.transport = Transport(url, api_key=api_key, timeout=timeout, connect_timeout=connect_timeout,
                                   retries=retries, backoff=backoff)
        self.url = self.transport.url
        self.model = model
        self.requested_flavor: Flavor = flavor
        self.flavor: str | None = None if flavor == "auto" else flavor  # resolved on first use
        self.stop_ids: tuple[int, ...] = tuple(stop_ids)
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
        self.server_sends_ids = False
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
            from neuraldbg.trace.cwm_tokens import SPECIAL_IDS

            self._specials = SPECIAL_IDS
        return self._specials

    def health(self) -> list[str]:
        """Model ids the server offers (``GET /v1/models``; ``[]`` when it only
        answers ``/health``). Raises :class:`BackendError` when unreachable."""
        cards = self.transport.models()
        if not self._resolved:
            self._resolve(cards)
        if cards is None:
            self.transport.get("/health")
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
            for token in piece.ids:
                # One chunk may carry several ids: a cancel between them is honoured at once.
                if cancel is not None:
                    cancel.raise_if_cancelled()
                yield token

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
        if not prompt or not is_token_ids(prompt):
            raise BackendError("remote backend: the prompt must be a non-empty list of token ids")
        self._check_open()
        if sampling.max_tokens <= 0:
            return
        if cancel is not None:
            cancel.raise_if_cancelled()
        self.stats.requests += 1
        self.stats.prompt_tokens += len(prompt)
        stops = list(dict.fromkeys([*stop_ids, *self.stop_ids]))  # the request's first, then the profile's
        req = GenerationRequest(prompt, stops, sampling.max_tokens, cancel)
        attempt = 0
        while True:
            try:
                yield from self._attempt(req, sampling)
                return
            except Retryable as r:  # raised only before any token was yielded
                cancellable_sleep(self.transport.delay_before_retry(attempt, r), cancel)
                attempt += 1

    def score(self, ids: Sequence[int], *, start: int, cancel: CancelToken | None = None) -> list[TokenScore]:
        """:class:`~neuraldbg.backends.base.ScoringBackend`: one teacher-forced
        prefill on the server (see :mod:`neuraldbg.backends.remote.scoring`
        for the requests); SGLang's native dialect for an SGLang server,
        vLLM's ``prompt_logprobs`` for the others."""
        ids = list(ids)
        if not ids or not is_token_ids(ids):
            raise BackendError("remote backend: the ids to score must be a non-empty list of token ids")
        if not 1 <= start <= len(ids):
            raise BackendError(f"remote backend: scoring start {start} is outside 1..{len(ids)}")
        self._check_open()
        if cancel is not None:
            cancel.raise_if_cancelled()
        self.resolve()
        # vLLM needs room for the one token it generates; ours generates none.
        extra = 0 if self.flavor == "neuraldbg" else 1
        if self.max_model_len is not None and len(ids) + extra > self.max_model_len:
            raise BackendError(f"cannot score {len(ids):,} tokens: the context of the model at {self.url} holds {self.max_model_len:,}")
        if start == len(ids):
            return []
        self.stats.requests += 1
        self.stats.prompt_tokens += len(ids)
        if self.flavor == "sglang":
            obj = self.transport.post_json("/generate", sglang_score_body(ids, start))
            scores = parse_sglang_scores(obj, ids, start, self.url)
        else:
            obj = self.transport.post_json("/v1/completions", vllm_score_body(ids, self.model, max_tokens=extra))
            scores = parse_vllm_scores(obj, ids, start, self.url)
        if cancel is not None:
            cancel.raise_if_cancelled()
        return scores

    def close(self) -> None:
        self.transport.close()

    def resolve(self) -> None:
        """Pick the flavor and the model name (``GET /v1/models``, once, retried)."""
        self.transport.with_retries(self._resolve)

    def text_converter(self, prompt: Sequence[int], stop_ids: set[int]) -> TextToIds:
        """The text -> ids converter for one text-only answer to ``prompt``."""
        if self._prompt_names is None:
            self._prompt_names = PromptNames(self.special_tokens)
        ambiguous = self._prompt_names.find(prompt, self.tokenizer)
        return TextToIds(self.special_tokens, self.tokenizer, stop_ids=stop_ids, ambiguous=ambiguous)

    def __repr__(self) -> str:
        return f"RemoteBackend({self.url!r}, flavor={self.flavor or self.requested_flavor!r}, model={self.model!r})"

    # -- internals -------------------------------------------------------------------

    def _check_open(self) -> None:
        if self.transport.closed:
            raise BackendError(f"the remote backend for {self.url} is closed")

    def _attempt(self, req: GenerationRequest, sampling: Sampling) -> Iterator[GeneratedPiece]:
        self._resolve()
        path, body = generation_request(self.flavor, self.model, req.prompt, req.stop_ids, sampling,
                                        ask_logprob_ids=not self.server_sends_ids)
        resp = self.transport.open_stream(path, body)
        try:
            yield from read_pieces(self, resp, req)
        finally:
            resp.close()

    def _resolve(self, cards: list[Any] | None | Literal[False] = False) -> None:
        """Pick the flavor and the model name from ``GET /v1/models`` (once)."""
        if self._resolved:
            return
        if cards is False:
            cards = self.transport.models_once()
        owner = ""
        if cards:
            first = cards[0] if isinstance(cards[0], dict) else {}
            owner = str(first.get("owned_by", "")).lower()
            if self.max_model_len is None and int_or_none(first.get("max_model_len")):
                self.max_model_len = int(first["max_model_len"])
            if self.model is None and first.get("id") is not None:
                self.model = str(first["id"])
                self.name = f"{self.model} @ {self.url}"
        if self.flavor is None:
            self.flavor = owner if owner in ("neuraldbg", "sglang") else "vllm"
            log.info("model server %s: flavor %s, model %s", self.url, self.flavor, self.model)
        self._resolved = True


def _load_tokenizer(path: str) -> TokenizerLike:
    from neuraldbg.backends.hf_tokenizer import HFTokenizerAdapter, load_tokenizer  # transformers: only here

    try:
        return HFTokenizerAdapter(load_tokenizer(path))
    except (OSError, ValueError) as e:
        raise BackendError(f"cannot load the tokenizer from {path}: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None

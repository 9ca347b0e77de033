"""The model server's wire format: request validation and response shapes.

Shaped like vLLM's OpenAI-compatible ``/v1/completions`` so that the same
client (and curl recipes written for vLLM) work against either:

- ``prompt``: a list of token ids (or one string, encoded with the served
  tokenizer; special-token names in it become their ids, no BOS is added);
- ``max_tokens`` (default 16), ``temperature`` (default 1.0), ``top_p``
  (default 1.0), ``seed``, ``stop_token_ids``, ``stream``,
  ``stream_options.include_usage``;
- ``return_token_ids: true`` adds ``token_ids`` to each choice (the delta in
  a stream chunk) and ``prompt_token_ids`` (first chunk);
- ``include_stop_str_in_output`` (default false, as vLLM): whether the text
  ends with the stop token's name. The stop id is always in ``token_ids``;
- ``prompt_logprobs`` (0 or 1, not with ``stream``; needs a backend with
  ``score()``, the ScoringBackend protocol): vLLM's shape, one entry per
  prompt position, ``null`` for the first, then ``{"<id>": {"logprob",
  "rank", "decoded_token"}}`` for the prompt's token and, with 1, the top-1
  (``rank`` 1; one entry when they are the same id). A prompt token that is
  not the top-1 has ``rank: null`` (the backend reports the top-1 only).
  ``max_tokens: 0`` asks for the scores alone (no generation).

The text is the decode of the ids with special tokens written as their
names. Accepted and ignored: ``skip_special_tokens``,
``spaces_between_special_tokens``, ``logprobs`` and
``return_tokens_as_token_ids`` (no logprobs are computed: ``"logprobs":
null``), ``user``, ``add_special_tokens``. Rejected with 400: several
prompts, ``n`` > 1, ``echo``, stop strings, ``suffix``, beam search.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from neuraldbg.backends.base import Sampling, TokenScore
from neuraldbg.trace.tokenizer import TokenizerLike


class RequestError(Exception):
    """A request the server refuses: HTTP status plus an OpenAI-style error."""

    def __init__(self, status: int, message: str, type_: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_


def error_body(status: int, message: str, type_: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "code": status}}


@dataclass(frozen=True)
class CompletionRequest:
    prompt: tuple[int, ...]
    sampling: Sampling
    stop_ids: tuple[int, ...]
    stream: bool = False
    include_usage: bool = False
    return_token_ids: bool = False
    include_stop_str: bool = False
    prompt_logprobs: int | None = None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_ids(ids: Sequence[Any], what: str, vocab_size: int | None) -> tuple[int, ...]:
    for i, token_id in enumerate(ids):
        if not _is_int(token_id):
            raise RequestError(400, f"{what}[{i}] is not an integer token id: {token_id!r}")
        if token_id < 0 or (vocab_size is not None and token_id >= vocab_size):
            limit = f"0..{vocab_size - 1}" if vocab_size is not None else "non-negative"
            raise RequestError(400, f"{what}[{i}] = {token_id} is out of the vocabulary range ({limit})")
    return tuple(ids)


def encode_with_specials(tok: TokenizerLike, specials: Mapping[str, int], text: str) -> list[int]:
    """Text to ids where special-token names become their ids (string prompts only)."""
    ids: list[int] = []
    pos = 0
    while pos < len(text):
        nxt = text.find("<|", pos)
        if nxt < 0:
            ids.extend(tok.encode(text[pos:]))
            break
        end = text.find("|>", nxt + 2)
        name = text[nxt : end + 2] if end >= 0 else ""
        if name in specials:
            if nxt > pos:
                ids.extend(tok.encode(text[pos:nxt]))
            ids.append(specials[name])
            pos = end + 2
        else:
            ids.extend(tok.encode(text[pos : nxt + 2]))
            pos = nxt + 2
    return ids


def parse_completion_request(
    body: Any,
    *,
    served_model: str,
    vocab_size: int | None,
    tokenizer: TokenizerLike | None,
    specials: Mapping[str, int],
    max_model_len: int | None = None,
) -> CompletionRequest:
    if not isinstance(body, dict):
        raise RequestError(400, "the request body must be a JSON object")
    model = body.get("model")
    if model is not None and model != served_model:
        raise RequestError(404, f"the model `{model}` does not exist; this server serves `{served_model}`", "not_found_error")

    prompt = body.get("prompt")
    if prompt is None:
        raise RequestError(400, "missing 'prompt' (a list of token ids)")
    if isinstance(prompt, list) and prompt and all(isinstance(p, (list, str)) for p in prompt):
        if len(prompt) != 1:
            raise RequestError(400, f"only one prompt per request is supported (got {len(prompt)})")
        prompt = prompt[0]
    if isinstance(prompt, str):
        if not prompt:
            raise RequestError(400, "'prompt' is empty")
        if tokenizer is None:
            raise RequestError(400, "this server has no tokenizer: send the prompt as a list of token ids")
        prompt = encode_with_specials(tokenizer, specials, prompt)
    if not isinstance(prompt, list):
        raise RequestError(400, "'prompt' must be a list of token ids or a string")
    if not prompt:
        raise RequestError(400, "'prompt' is empty")
    prompt_ids = _check_ids(prompt, "prompt", vocab_size)
    if max_model_len is not None and len(prompt_ids) >= max_model_len:
        raise RequestError(400, f"the prompt has {len(prompt_ids)} tokens; the model's context holds {max_model_len}")

    for name, ok, why in (
        ("n", lambda v: v in (None, 1), "only n=1 is supported"),
        ("best_of", lambda v: v in (None, 1), "best_of is not supported"),
        ("echo", lambda v: v in (None, False), "echo is not supported"),
        ("suffix", lambda v: v is None, "suffix is not supported"),
        ("use_beam_search", lambda v: v in (None, False), "beam search is not supported"),
        ("stop", lambda v: v in (None, [], ""), "stop strings are not supported: use stop_token_ids"),
    ):
        if not ok(body.get(name)):
            raise RequestError(400, why)

    max_tokens = body.get("max_tokens", 16)
    if max_tokens is None:
        max_tokens = 16
    if not _is_int(max_tokens) or max_tokens < 0:
        raise RequestError(400, f"'max_tokens' must be a non-negative integer (got {max_tokens!r})")
    temperature = body.get("temperature", 1.0)
    temperature = 1.0 if temperature is None else temperature
    if not _is_number(temperature) or temperature < 0:
        raise RequestError(400, f"'temperature' must be a number >= 0 (got {temperature!r})")
    top_p = body.get("top_p", 1.0)
    top_p = 1.0 if top_p is None else top_p
    if not _is_number(top_p) or not 0 < top_p <= 1:
        raise RequestError(400, f"'top_p' must be in (0, 1] (got {top_p!r})")
    seed = body.get("seed")
    if seed is not None and not _is_int(seed):
        raise RequestError(400, f"'seed' must be an integer (got {seed!r})")
    stop = body.get("stop_token_ids") or []
    if not isinstance(stop, list):
        raise RequestError(400, "'stop_token_ids' must be a list of token ids")
    stop_ids = _check_ids(stop, "stop_token_ids", vocab_size)

    stream = body.get("stream", False)
    if not isinstance(stream, bool | None):
        raise RequestError(400, "'stream' must be a boolean")
    options = body.get("stream_options")
    if options is not None:
        if not stream:
            raise RequestError(400, "'stream_options' is only allowed with stream=true")
        if not isinstance(options, dict):
            raise RequestError(400, "'stream_options' must be an object")
    prompt_logprobs = body.get("prompt_logprobs")
    if prompt_logprobs is not None:
        if not _is_int(prompt_logprobs) or prompt_logprobs not in (0, 1):
            raise RequestError(400, f"'prompt_logprobs' must be 0 or 1 on this server (got {prompt_logprobs!r})")
        if stream:
            raise RequestError(400, "'prompt_logprobs' are not available when stream=true")
    flags = {}
    for name in ("return_token_ids", "include_stop_str_in_output"):
        value = body.get(name, False)
        if not isinstance(value, bool | None):
            raise RequestError(400, f"'{name}' must be a boolean")
        flags[name] = bool(value)
    return CompletionRequest(
        prompt=prompt_ids,
        sampling=Sampling(temperature=float(temperature), top_p=float(top_p), max_tokens=max_tokens, seed=seed),
        stop_ids=stop_ids,
        stream=bool(stream),
        include_usage=bool(options and options.get("include_usage")),
        return_token_ids=flags["return_token_ids"],
        include_stop_str=flags["include_stop_str_in_output"],
        prompt_logprobs=prompt_logprobs,
    )


class TextDecoder:
    """Ids to text as they arrive: ordinary runs through the tokenizer,
    special ids as their names. A run that ends inside a multi-byte
    character is held back until the character is complete."""

    def __init__(self, tokenizer: TokenizerLike | None, names: Mapping[int, str]) -> None:
        self._tok = tokenizer
        self._names = names
        self._run: list[int] = []

    def feed(self, ids: Sequence[int]) -> str:
        if self._tok is None:
            return "".join(self._names.get(i, "") for i in ids)
        parts: list[str] = []
        for token_id in ids:
            name = self._names.get(token_id)
            if name is None:
                self._run.append(token_id)
                continue
            parts.append(self.flush())
            parts.append(name)
        if self._run:
            text = self._tok.decode(self._run)
            if not text.endswith("\ufffd"):
                self._run = []
                parts.append(text)
        return "".join(parts)

    def flush(self) -> str:
        run, self._run = self._run, []
        return self._tok.decode(run) if run and self._tok is not None else ""


def decode_all(tokenizer: TokenizerLike | None, names: Mapping[int, str], ids: Sequence[int]) -> str:
    dec = TextDecoder(tokenizer, names)
    return dec.feed(ids) + dec.flush()


def prompt_logprobs_entries(
    scores: Sequence[TokenScore], k: int, decode: Callable[[int], str | None]
) -> list[dict[str, dict[str, Any]] | None]:
    """vLLM's ``prompt_logprobs`` list from the scores of positions 1.. of a
    prompt (``k`` is the request's ``prompt_logprobs``: 0 or 1)."""
    out: list[dict[str, dict[str, Any]] | None] = [None]
    for s in scores:
        entry = {str(s.token): {"logprob": s.logprob, "rank": 1 if s.top == s.token else None,
                                "decoded_token": decode(s.token)}}
        if k >= 1 and s.top != s.token:
            entry[str(s.top)] = {"logprob": s.top_logprob, "rank": 1, "decoded_token": decode(s.top)}
        out.append(entry)
    return out


@dataclass
class CompletionIds:
    """The outcome of one generation, as the response builders need it."""

    ids: list[int] = field(default_factory=list)
    finish_reason: str | None = None
    stop_reason: int | None = None
    cached_tokens: int = 0
    prompt_logprobs: list[dict[str, dict[str, Any]] | None] | None = None


def finish_of(req: CompletionRequest, ids: Sequence[int]) -> tuple[str, int | None]:
    if ids and ids[-1] in req.stop_ids:
        return "stop", ids[-1]
    if len(ids) >= req.sampling.max_tokens:
        return "length", None
    return "stop", None  # the backend ended on its own


def new_completion_id() -> str:
    return f"cmpl-{uuid.uuid4().hex}"


def usage(prompt_tokens: int, completion_tokens: int, cached_tokens: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": cached_tokens},
    }


def completion_response(
    req: CompletionRequest, *, cid: str, model: str, text: str, result: CompletionIds
) -> dict[str, Any]:
    choice: dict[str, Any] = {
        "index": 0,
        "text": text,
        "logprobs": None,
        "finish_reason": result.finish_reason,
        "stop_reason": result.stop_reason,
    }
    if req.return_token_ids:
        choice["token_ids"] = list(result.ids)
        choice["prompt_token_ids"] = list(req.prompt)
    if result.prompt_logprobs is not None:
        choice["prompt_logprobs"] = result.prompt_logprobs
    return {
        "id": cid,
        "object": "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": [choice],
        "usage": usage(len(req.prompt), len(result.ids), result.cached_tokens),
    }


def stream_chunk(
    req: CompletionRequest,
    *,
    cid: str,
    created: int,
    model: str,
    text: str,
    ids: Sequence[int],
    first: bool,
    finish_reason: str | None = None,
    stop_reason: int | None = None,
) -> dict[str, Any]:
    choice: dict[str, Any] = {
        "index": 0,
        "text": text,
        "logprobs": None,
        "finish_reason": finish_reason,
        "stop_reason": stop_reason,
    }
    if req.return_token_ids:
        choice["token_ids"] = list(ids)
        if first:
            choice["prompt_token_ids"] = list(req.prompt)
    return {"id": cid, "object": "text_completion", "created": created, "model": model, "choices": [choice], "usage": None}


def usage_chunk(req: CompletionRequest, *, cid: str, created: int, model: str, completion_tokens: int, cached_tokens: int) -> dict[str, Any]:
    return {
        "id": cid,
        "object": "text_completion",
        "created": created,
        "model": model,
        "choices": [],
        "usage": usage(len(req.prompt), completion_tokens, cached_tokens),
    }

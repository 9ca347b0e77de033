"""The two generation dialects: what is sent, and how each stream chunk reads.

OpenAI-shaped ``/v1/completions`` (vLLM, ``neuraldbg model-server``) and
SGLang's native ``/generate``; the request shapes are listed in
:mod:`neuraldbg.backends.remote`. A parser turns one chunk into an
engine-neutral :class:`Delta`; the stream state
(:mod:`neuraldbg.backends.remote.stream`) does the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from neuraldbg.backends.base import BackendError, Sampling
from neuraldbg.backends.remote.transport import ERROR_SNIPPET

IdSource = Literal["token_ids", "logprobs", "text"]


@dataclass
class Delta:
    """One parsed chunk, engine-neutral."""

    ids: list[int] | None = None
    source: IdSource | None = None
    text: str = ""
    finish_reason: str | None = None
    stop_id: int | None = None
    prompt_tokens: int | None = None
    cached_tokens: int | None = None


class ChunkParser(Protocol):
    def parse(self, obj: dict[str, Any]) -> Delta: ...


def parser_for(flavor: str | None, where: str) -> ChunkParser:
    """A fresh parser for one response (the SGLang one keeps per-stream counts)."""
    return SGLangChunkParser(where) if flavor == "sglang" else OpenAIChunkParser(where)


def generation_request(flavor: str | None, model: str | None, prompt: list[int], stop_ids: list[int],
                       sampling: Sampling, *, ask_logprob_ids: bool) -> tuple[str, dict[str, Any]]:
    """The path and body of one streamed generation. ``ask_logprob_ids``: ask
    vLLM for ids through logprobs too (until it is seen to send token_ids)."""
    if flavor == "sglang":
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
    if model is not None:
        body["model"] = model
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
    if flavor == "vllm":
        if ask_logprob_ids:
            body.update(logprobs=0, return_tokens_as_token_ids=True)
        body.update(spaces_between_special_tokens=False)
    body.update(skip_special_tokens=False, include_stop_str_in_output=True)
    return "/v1/completions", body


# -- chunk parsers -------------------------------------------------------------


def is_token_ids(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes)) and all(
        isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in value)


def _as_ids(value: Any, what: str) -> list[int]:
    if not isinstance(value, list) or not is_token_ids(value):
        raise BackendError(f"malformed stream chunk: {what} is not a list of token ids")
    return list(value)


def _raise_if_error(obj: dict[str, Any], where: str) -> None:
    err = obj.get("error")
    if err is None and obj.get("object") == "error":  # older vLLM / SGLang shape
        err = obj
    if err is None:
        return
    msg = err.get("message") if isinstance(err, dict) else err
    raise BackendError(f"model server at {where} failed: {str(msg)[:ERROR_SNIPPET]}")


def int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _read_usage(usage: Any, delta: Delta) -> None:
    if not isinstance(usage, dict):
        return
    delta.prompt_tokens = int_or_none(usage.get("prompt_tokens"))
    details = usage.get("prompt_tokens_details")
    if isinstance(details, dict):
        delta.cached_tokens = int_or_none(details.get("cached_tokens"))


class OpenAIChunkParser:
    """``/v1/completions`` chunks (vLLM, neuraldbg, and OpenAI-shaped others)."""

    def __init__(self, where: str) -> None:
        self._where = where

    def parse(self, obj: dict[str, Any]) -> Delta:
        _raise_if_error(obj, self._where)
        delta = Delta()
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
            delta.stop_id = int_or_none(choice.get("stop_reason", choice.get("matched_stop")))
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


class SGLangChunkParser:
    """SGLang ``/generate`` chunks: ``output_ids`` and ``text`` are cumulative
    unless the server runs with ``--incremental-streaming-output``; the
    cumulative ``meta_info.completion_tokens`` tells which."""

    def __init__(self, where: str) -> None:
        self._where = where
        self._n_ids = 0
        self._text_len = 0

    def parse(self, obj: dict[str, Any]) -> Delta:
        _raise_if_error(obj, self._where)
        meta = obj.get("meta_info")
        if not isinstance(meta, dict):
            raise BackendError("malformed stream chunk: no 'meta_info' object")
        delta = Delta()
        ids = obj.get("output_ids")
        text = obj.get("text") or ""
        if not isinstance(text, str):
            raise BackendError("malformed stream chunk: 'text' is not a string")
        total = int_or_none(meta.get("completion_tokens"))
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
        delta.prompt_tokens = int_or_none(meta.get("prompt_tokens"))
        delta.cached_tokens = int_or_none(meta.get("cached_tokens"))
        finish = meta.get("finish_reason")
        if isinstance(finish, dict):
            kind = str(finish.get("type"))
            if kind == "abort":
                raise BackendError(
                    f"model server at {self._where} aborted the generation: {str(finish.get('message', ''))[:ERROR_SNIPPET]}"
                )
            delta.finish_reason = kind
            delta.stop_id = int_or_none(finish.get("matched"))
        elif finish is not None:
            delta.finish_reason = str(finish)
        return delta

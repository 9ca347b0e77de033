"""One-prefill scoring over HTTP: request bodies and answer parsers.

vLLM (and ``neuraldbg model-server``): ``POST /v1/completions`` without
streaming (vLLM refuses ``prompt_logprobs`` with ``stream: true``)::

    {"model": M, "prompt": [ids], "max_tokens": 1, "temperature": 0,
     "prompt_logprobs": 1}

``choices[0].prompt_logprobs`` has one entry per prompt position: ``null``
for the first, then ``{"<id>": {"logprob", "rank", "decoded_token"}}``
holding the prompt's own token and the top-1 (``rank`` 1; one entry when
they are the same id). vLLM clamps ``-inf`` to ``-9999.0``. ``max_tokens`` is
1 because vLLM generates at least one token; neuraldbg's server accepts 0
(no generation at all). vLLM skips its prefix cache for requests that ask
for prompt logprobs, so a score is always a full prefill there.

SGLang: its native ``POST /generate``::

    {"input_ids": [ids], "return_logprob": true, "logprob_start_len": S - 1,
     "top_logprobs_num": 1, "stream": false,
     "sampling_params": {"max_new_tokens": 1, "temperature": 0}}

``meta_info.input_token_logprobs`` is ``[[logprob, id, text], ...]`` for
``ids[S-1:]`` whose first entry's logprob is always ``null`` (SGLang pads
it), which is why the start is one before the first scored position;
``meta_info.input_top_logprobs`` is aligned with it (``null``, then one
``[[logprob, id, text]]`` list per position).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from neuraldbg.backends.base import BackendError, TokenScore


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def vllm_score_body(ids: Sequence[int], model: str | None, *, max_tokens: int) -> dict[str, Any]:
    body: dict[str, Any] = {} if model is None else {"model": model}
    body.update(prompt=list(ids), max_tokens=max_tokens, temperature=0.0, prompt_logprobs=1)
    return body


def sglang_score_body(ids: Sequence[int], start: int) -> dict[str, Any]:
    return {
        "input_ids": list(ids),
        "return_logprob": True,
        "logprob_start_len": start - 1,
        "top_logprobs_num": 1,
        "stream": False,
        "sampling_params": {"max_new_tokens": 1, "temperature": 0.0},
    }


def parse_vllm_scores(obj: dict[str, Any], ids: Sequence[int], start: int, where: str) -> list[TokenScore]:
    choices = obj.get("choices")
    entries = choices[0].get("prompt_logprobs") if isinstance(choices, list) and choices and isinstance(choices[0], dict) else None
    if not isinstance(entries, list):
        raise BackendError(f"model server at {where} returned no prompt_logprobs (it cannot score prompts)")
    if len(entries) != len(ids):
        raise BackendError(f"model server at {where} returned {len(entries)} prompt_logprobs for {len(ids)} prompt tokens")
    return [_vllm_position(entries[i], ids[i], i, where) for i in range(start, len(ids))]


def _vllm_position(entry: Any, token: int, pos: int, where: str) -> TokenScore:
    if not isinstance(entry, dict) or not entry:
        raise BackendError(f"model server at {where} sent malformed prompt_logprobs at position {pos}")
    scored: dict[int, tuple[float, int | None]] = {}
    for key, value in entry.items():
        logprob = _number(value.get("logprob")) if isinstance(value, dict) else None
        if logprob is None or not str(key).isdigit():
            raise BackendError(f"model server at {where} sent malformed prompt_logprobs at position {pos}")
        rank = value.get("rank")
        scored[int(key)] = (logprob, rank if isinstance(rank, int) and not isinstance(rank, bool) else None)
    if token not in scored:
        raise BackendError(f"model server at {where} left the prompt token out of prompt_logprobs at position {pos}")
    # The top-1 is the rank-1 entry; on a tie (or a server without ranks) the
    # highest logprob, the given token first.
    top = max(scored, key=lambda i: (scored[i][1] == 1, scored[i][0], i == token))
    return TokenScore(token=token, logprob=scored[token][0], top=top, top_logprob=scored[top][0])


def parse_sglang_scores(obj: Any, ids: Sequence[int], start: int, where: str) -> list[TokenScore]:
    if isinstance(obj, list) and len(obj) == 1:
        obj = obj[0]
    meta = obj.get("meta_info") if isinstance(obj, dict) else None
    tokens = meta.get("input_token_logprobs") if isinstance(meta, dict) else None
    tops = meta.get("input_top_logprobs") if isinstance(meta, dict) else None
    want = len(ids) - start + 1
    if not isinstance(tokens, list) or not isinstance(tops, list):
        raise BackendError(f"model server at {where} returned no input logprobs (it cannot score prompts)")
    if len(tokens) != want or len(tops) != want:
        raise BackendError(f"model server at {where} returned {len(tokens)} input logprobs for {want} positions")
    out: list[TokenScore] = []
    for k in range(1, want):
        token = ids[start - 1 + k]
        entry, top_list = tokens[k], tops[k]
        logprob = _number(entry[0]) if isinstance(entry, list) and len(entry) >= 2 and entry[1] == token else None
        best = top_list[0] if isinstance(top_list, list) and top_list and isinstance(top_list[0], list) else None
        top_logprob = _number(best[0]) if best is not None and len(best) >= 2 else None
        top = best[1] if best is not None and len(best) >= 2 and isinstance(best[1], int) else None
        if logprob is None or top_logprob is None or top is None:
            raise BackendError(f"model server at {where} sent malformed input logprobs at position {start - 1 + k}")
        out.append(TokenScore(token=token, logprob=logprob, top=top, top_logprob=top_logprob))
    return out

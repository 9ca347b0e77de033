"""A :class:`TokenizerLike` that asks the model server: ``/tokenize`` and
``/detokenize`` (vLLM, neuraldbg; SGLang under ``/v1/``)."""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from neuraldbg.backends.base import BackendError
from neuraldbg.backends.remote.dialects import is_token_ids

if TYPE_CHECKING:
    from neuraldbg.backends.remote.peer import RemotePeer


class ServerTokenizer:
    """A :class:`TokenizerLike` that asks the model server (vLLM and
    neuraldbg: ``/tokenize`` and ``/detokenize``; SGLang: ``/v1/...``).

    ``encode`` never yields a special id: text is cut after every ``<`` that
    starts a special-looking name (``<|...|>``) before it is sent, so user
    source cannot smuggle a special token in. Answers are cached (LRU).
    """

    _SPECIAL_LIKE = re.compile(r"<(?=\|[^|<>]{1,64}\|>)")

    def __init__(self, backend: "RemotePeer", cache_size: int = 4096) -> None:
        self._backend = backend
        self._cache_size = cache_size
        self._enc: OrderedDict[str, list[int]] = OrderedDict()
        self._dec: OrderedDict[tuple[int, ...], str] = OrderedDict()
        self._lock = threading.Lock()

    def encode(self, text: str) -> list[int]:
        if not text:
            return []
        cached = self._lookup(self._enc, text)
        if cached is not None:
            return list(cached)
        ids: list[int] = []
        for part in self._safe_parts(text):
            ids.extend(self._tokenize(part))
        self._store(self._enc, text, ids)
        return list(ids)

    def decode(self, ids: Sequence[int]) -> str:
        key = tuple(ids)
        if not key:
            return ""
        cached = self._lookup(self._dec, key)
        if cached is not None:
            return cached
        backend = self._backend
        backend.resolve()
        path = "/v1/detokenize" if backend.flavor == "sglang" else "/detokenize"
        body: dict[str, Any] = {"tokens": list(key)}
        if backend.model is not None:
            body["model"] = backend.model
        obj = backend.transport.post_json(path, body)
        text = obj.get("prompt", obj.get("text"))
        if not isinstance(text, str):
            raise BackendError(f"model server at {backend.url} sent a malformed {path} answer")
        self._store(self._dec, key, text)
        return text

    def _tokenize(self, text: str) -> list[int]:
        backend = self._backend
        backend.resolve()
        path = "/v1/tokenize" if backend.flavor == "sglang" else "/tokenize"
        body: dict[str, Any] = {"prompt": text, "add_special_tokens": False}
        if backend.model is not None:
            body["model"] = backend.model
        tokens = backend.transport.post_json(path, body).get("tokens")
        if not isinstance(tokens, list) or not is_token_ids(tokens):
            raise BackendError(f"model server at {backend.url} sent a malformed {path} answer")
        return list(tokens)

    @classmethod
    def _safe_parts(cls, text: str) -> list[str]:
        cuts = [m.start() + 1 for m in cls._SPECIAL_LIKE.finditer(text)]
        if not cuts:
            return [text]
        bounds = [0, *cuts, len(text)]
        return [text[a:b] for a, b in zip(bounds, bounds[1:]) if b > a]

    def _lookup(self, cache: OrderedDict[Any, Any], key: Any) -> Any:
        with self._lock:
            if key in cache:
                cache.move_to_end(key)
                return cache[key]
        return None

    def _store(self, cache: OrderedDict[Any, Any], key: Any, value: Any) -> None:
        with self._lock:
            cache[key] = value
            while len(cache) > self._cache_size:
                cache.popitem(last=False)

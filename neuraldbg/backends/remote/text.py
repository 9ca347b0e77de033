"""Generated text back to token ids, for model servers that return text only.

A server that answers without token ids (vLLM without ``return_token_ids``
and without ``return_tokens_as_token_ids``, a proxy that drops them) writes
special tokens as their names, so ``<|action_sep|>`` in its text may be the
special id or the same characters spelled by ordinary tokens (a string in
the user's program). User text must never become a special id, so a name in
the text becomes its id only when nothing else can explain it:

- a stop token (the request's ``stop_token_ids``) ends the generation, so
  its name is the special id only at the very end of a completion that
  finished with ``"stop"``; anywhere else it is text;
- any other name whose characters also occur as ordinary text in the prompt
  (the user's source, or values already in the trace) is ambiguous: it stays
  text. When the model meant the special token, the frame then lacks a
  separator and the trace parser flags it, instead of a wrong frame passing
  as a good one;
- every other special name is the special id.

Everything that is not a special id is encoded with the tokenizer, which
never yields a special id.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Collection, Mapping, Sequence

from neuraldbg.trace.tokenizer import TokenizerLike

log = logging.getLogger(__name__)


class PromptNames:
    """Which special names a prompt spells as ordinary text.

    The prompt is cut at its special ids; each ordinary run is decoded once
    and remembered (LRU), so the context and earlier frames, identical from
    request to request, are decoded a single time."""

    def __init__(self, specials: Mapping[str, int], cache_size: int = 2048) -> None:
        self._names = sorted(specials, key=len, reverse=True)
        self._ids = frozenset(specials.values())
        self._cache: OrderedDict[tuple[int, ...], frozenset[str]] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def find(self, prompt: Sequence[int], tokenizer: TokenizerLike) -> frozenset[str]:
        found: set[str] = set()
        run: list[int] = []
        for token_id in [*prompt, None]:
            if token_id is not None and token_id not in self._ids:
                run.append(token_id)
                continue
            if run:
                found |= self._run_names(tuple(run), tokenizer)
                run = []
        return frozenset(found)

    def _run_names(self, run: tuple[int, ...], tokenizer: TokenizerLike) -> frozenset[str]:
        with self._lock:
            if run in self._cache:
                self._cache.move_to_end(run)
                return self._cache[run]
        text = tokenizer.decode(list(run))
        names = frozenset(n for n in self._names if n in text)
        with self._lock:
            self._cache[run] = names
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return names


class TextToIds:
    """Streaming text -> ids under the rules of the module docstring.

    ``feed`` converts what can be decided now and keeps back a tail: the
    start of what may be a special name, or a stop name at the very end
    (real only if nothing follows it). ``flush`` decides the tail once the
    server said why it finished."""

    def __init__(
        self,
        specials: Mapping[str, int],
        tokenizer: TokenizerLike,
        *,
        stop_ids: Collection[int] = (),
        ambiguous: Collection[str] = (),
    ) -> None:
        names = sorted(specials, key=len, reverse=True)
        self._specials = specials
        self._stop_names = frozenset(n for n in names if specials[n] in set(stop_ids))
        self._ambiguous = frozenset(ambiguous) - self._stop_names
        self._re = re.compile("|".join(re.escape(n) for n in names)) if names else None
        self._prefixes = {n[:k] for n in names for k in range(1, len(n))}
        self._longest = max((len(n) for n in names), default=0)
        self._tok = tokenizer
        self._tail = ""
        self.kept_as_text: set[str] = set()  # ambiguous names met, for the caller's log

    def feed(self, text: str) -> list[int]:
        text = self._tail + text
        self._tail = ""
        for name in self._stop_names:
            if text.endswith(name):
                text, self._tail = text[: -len(name)], name
                return self._convert(text)
        for k in range(min(self._longest - 1, len(text)), 0, -1):
            if text[-k:] in self._prefixes:
                text, self._tail = text[:-k], text[-k:]
                break
        return self._convert(text)

    def flush(self, finish_reason: str | None) -> list[int]:
        """The rest, now that the completion ended with ``finish_reason``."""
        tail, self._tail = self._tail, ""
        if tail in self._stop_names and finish_reason == "stop":
            return [self._specials[tail]]
        return self._ordinary(tail)

    def _convert(self, text: str) -> list[int]:
        if not text:
            return []
        if self._re is None:
            return self._ordinary(text)
        ids: list[int] = []
        pos = 0
        for m in self._re.finditer(text):
            name = m.group(0)
            if name in self._stop_names or name in self._ambiguous:
                if name in self._ambiguous:
                    self.kept_as_text.add(name)
                continue  # stays in the ordinary text around it
            ids.extend(self._ordinary(text[pos : m.start()]))
            ids.append(self._specials[name])
            pos = m.end()
        ids.extend(self._ordinary(text[pos:]))
        return ids

    def _ordinary(self, text: str) -> list[int]:
        return list(self._tok.encode(text)) if text else []

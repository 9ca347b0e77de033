"""The backend contract: token ids in, token ids out.

Backends know nothing about traces, LSP or DAP. The simulation builds prompts
(with the CWM codec) and reads frames out of the ids a backend yields.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Callable, Protocol, runtime_checkable


class BackendError(RuntimeError):
    """A backend failed in a way the user should see (one clear line)."""


class Cancelled(Exception):
    """Raised inside a generation when its CancelToken was set."""


class CancelToken:
    """Checked between tokens; set from any thread."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled()


@dataclass(frozen=True)
class Sampling:
    temperature: float = 0.0  # 0 means greedy
    top_p: float = 0.95
    max_tokens: int = 2048  # cap on generated tokens for one request
    seed: int | None = None


@dataclass
class BackendStats:
    """Counters a benchmark or a status line can read."""

    requests: int = 0
    prompt_tokens: int = 0  # tokens in all prompts sent
    prefilled_tokens: int = 0  # tokens actually run through the model as prompt
    reused_tokens: int = 0  # prompt tokens served from a KV/prefix cache
    generated_tokens: int = 0
    forwards: int = 0  # every model forward pass (prefill chunks, decode steps, scoring chunks)
    decode_forwards: int = 0  # forward passes after the prefills (each yields one token, more with speculation)
    draft_tokens: int = 0  # speculative tokens proposed for verification
    accepted_tokens: int = 0  # of those, the ones the model agreed with


@dataclass(frozen=True)
class LoadProgress:
    """Reported while a model loads (forwarded to the editor as $/progress)."""

    message: str
    fraction: float | None = None  # 0..1 when known
    memory_per_device: dict[str, float] = field(default_factory=dict)  # GiB


ProgressCallback = Callable[[LoadProgress], None]


@runtime_checkable
class TokenBackend(Protocol):
    """Generates token ids for a prompt of token ids."""

    name: str  # what hovers show as "predicted by ..."
    stats: BackendStats

    def generate(
        self,
        prompt: Sequence[int],
        *,
        stop_ids: Sequence[int],
        sampling: Sampling,
        cancel: CancelToken | None = None,
    ) -> Iterator[int]:
        """Yield generated ids one at a time as soon as each is known.

        Stops after yielding a stop id (which IS yielded, so the caller sees
        which one ended the request), or after ``sampling.max_tokens`` ids.
        Raises :class:`Cancelled` when ``cancel`` is set (checked between
        tokens) and :class:`BackendError` on failures.
        """
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class TokenScore:
    """How a model rates one given token of a teacher-forced sequence."""

    token: int  # the id that stands at this position
    logprob: float  # log p(token | every id before it)
    top: int  # the id the model finds most likely here (what greedy decoding would write)
    top_logprob: float


@runtime_checkable
class ScoringBackend(Protocol):
    """A backend that can rate a whole given sequence in one prefill."""

    def score(self, ids: Sequence[int], *, start: int, cancel: CancelToken | None = None) -> list[TokenScore]:
        """One :class:`TokenScore` for each of ``ids[start:]`` (``start >= 1``),
        from a single teacher-forced pass over ``ids``. Raises
        :class:`BackendError` when ``ids`` is longer than the context."""
        ...

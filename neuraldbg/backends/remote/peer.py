"""What the stream reader and the server tokenizer need of a remote backend:
the connection and what was learned about the server (a protocol, so that
they do not import the backend that uses them)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from neuraldbg.backends.base import BackendStats
from neuraldbg.backends.remote.dialects import IdSource
from neuraldbg.backends.remote.text import TextToIds
from neuraldbg.backends.remote.transport import Transport


class RemotePeer(Protocol):
    transport: Transport
    url: str
    model: str | None
    flavor: str | None
    id_source: IdSource | None
    reports_cached_tokens: bool | None
    server_sends_ids: bool
    stats: BackendStats

    def resolve(self) -> None:
        """Learn the server's flavor and model name (first use)."""
        ...

    def text_converter(self, prompt: Sequence[int], stop_ids: set[int]) -> TextToIds: ...

"""Reading one generation answer: server-sent events (or a whole JSON answer)
into :class:`GeneratedPiece` s, with the contract's cut at a stop id or
``max_tokens``, the text fallback, and the usage the server reported."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
from httpx_sse import EventSource

from neuraldbg.backends.base import BackendError, CancelToken, Cancelled
from neuraldbg.backends.remote.dialects import ChunkParser, Delta, IdSource, parser_for
from neuraldbg.backends.remote.text import TextToIds
from neuraldbg.backends.remote.transport import Retryable

if TYPE_CHECKING:
    from neuraldbg.backends.remote.peer import RemotePeer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GeneratedPiece:
    """What one stream chunk contributed: ids (after the contract's cut at a
    stop id or ``max_tokens``), the text the server sent, and where the ids
    came from."""

    ids: tuple[int, ...]
    text: str
    source: IdSource


@dataclass(frozen=True)
class GenerationRequest:
    """What one answer is read against."""

    prompt: list[int]
    stop_ids: list[int]
    max_tokens: int
    cancel: CancelToken | None = None


def read_pieces(backend: "RemotePeer", resp: httpx.Response, req: GenerationRequest) -> Iterator[GeneratedPiece]:
    """The pieces of one open answer. A transport failure before any token is
    :class:`Retryable`; after one it is final (tokens are never re-sent)."""
    url = backend.url
    ctype = resp.headers.get("content-type", "")
    if "text/event-stream" not in ctype:
        if "json" in ctype:  # a server (or proxy) that ignored stream=true: one complete answer
            yield from _read_whole(backend, resp, req)
            return
        raise BackendError(f"model server at {url} answered with {ctype or 'no content type'!r} instead of an event stream")
    parser = parser_for(backend.flavor, url)
    state = StreamState(backend, req)
    events = EventSource(resp).iter_sse()
    try:
        for sse in events:
            if req.cancel is not None and req.cancel.cancelled:
                raise Cancelled()
            data = sse.data.strip()
            if not data:
                continue
            if data == "[DONE]":
                state.done = True
                break
            piece = state.take(parser.parse(parse_chunk(data, url)))
            if state.finished or state.cut:
                # Stats first: a consumer may stop reading after the stop id.
                if state.finished:
                    _drain(events, state, parser, url)
                state.record_stats()
                if piece is not None:
                    yield piece
                return  # on a cut, closing the response stops the server
            if piece is not None:
                yield piece
    except httpx.TimeoutException as e:
        raise backend.transport.timeout_error(e, state.produced) from None
    except httpx.TransportError as e:
        err = BackendError(f"connection to model server at {url} broke: {e or type(e).__name__}")
        if state.produced == 0:
            raise Retryable(err) from None
        raise BackendError(f"{err} after {state.produced} tokens (not re-sent)") from None
    except httpx.HTTPError as e:  # e.g. a body that does not decode
        raise BackendError(f"bad stream from model server at {url}: {e or type(e).__name__}") from None
    why = "[DONE] without a finish_reason" if state.done else "no finish_reason and no [DONE]"
    raise BackendError(f"model server at {url} ended the stream early ({why}; truncated after {state.produced} tokens)")


def _read_whole(backend: "RemotePeer", resp: httpx.Response, req: GenerationRequest) -> Iterator[GeneratedPiece]:
    try:
        resp.read()
    except httpx.TimeoutException as e:
        raise backend.transport.timeout_error(e, 0) from None
    if req.cancel is not None:
        req.cancel.raise_if_cancelled()
    state = StreamState(backend, req)
    piece = state.take(parser_for(backend.flavor, backend.url).parse(parse_chunk(resp.text, backend.url)))
    if not (state.finished or state.cut):
        raise BackendError(f"model server at {backend.url} returned a completion without a finish_reason")
    state.record_stats()
    if piece is not None:
        yield piece


def _drain(events: Iterator[Any], state: "StreamState", parser: ChunkParser, url: str) -> None:
    """After the finish chunk: read the usage chunk and [DONE] (both sent
    at once), so stats are complete before the last ids go out."""
    try:
        for sse in events:
            data = sse.data.strip()
            if data == "[DONE]":
                state.done = True
                return
            if data:
                state.take_usage(parser.parse(parse_chunk(data, url)))
    except (httpx.HTTPError, BackendError) as e:
        log.debug("ignoring a failure after the finish chunk: %s", e)


def parse_chunk(data: str, url: str) -> dict[str, Any]:
    try:
        obj = json.loads(data)
    except ValueError:
        raise BackendError(f"model server at {url} sent a malformed stream chunk (not JSON): {data[:120]!r}") from None
    if not isinstance(obj, dict):
        raise BackendError(f"model server at {url} sent a malformed stream chunk (not a JSON object): {data[:120]!r}")
    return obj


class StreamState:
    """Per-request bookkeeping: the contract's cut (a stop id, ``max_tokens``),
    the text fallback, and the usage the server reported."""

    def __init__(self, backend: "RemotePeer", req: GenerationRequest) -> None:
        self._backend = backend
        self._prompt = req.prompt
        self._stop = set(req.stop_ids)
        self._max = req.max_tokens
        self._text: TextToIds | None = None
        self.produced = 0
        self.last_id: int | None = None
        self.finished = False  # the server said why it stopped
        self.cut = False  # we stopped at a stop id / max_tokens before the server did
        self.done = False
        self.prompt_tokens: int | None = None
        self.cached_tokens: int | None = None

    def take(self, delta: Delta) -> GeneratedPiece | None:
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
        backend = self._backend
        if source == "token_ids":
            backend.server_sends_ids = True
        if source is not None and backend.id_source != source and (out or delta.text):
            backend.id_source = source
        backend.stats.generated_tokens += len(out)
        if not out and not delta.text:
            return None
        return GeneratedPiece(tuple(out), delta.text, source or backend.id_source or "text")

    def take_usage(self, delta: Delta) -> None:
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
            self._text = self._backend.text_converter(self._prompt, self._stop)
        return self._text

    def _log_kept_as_text(self) -> None:
        assert self._text is not None
        if self._text.kept_as_text:
            names = ", ".join(sorted(self._text.kept_as_text))
            log.warning("model server %s returned text only: %s also occurs as text in the prompt, so it was kept as "
                        "text (a frame that needed it as a separator comes out flagged)", self._backend.url, names)

"""Server -> client notices: ``neuraldbg/status`` and ``$/progress``.

Both are rate-limited; progress tokens are created with
``window/workDoneProgress/create`` only for clients that support it, and
that await is shielded (pygls#621: a cancelled task awaiting a client
response makes the late response raise InvalidStateError).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lsprotocol import types

from neuraldbg.config import Settings
from neuraldbg.server.throttle import Throttle
from neuraldbg.tracer import isolation

log = logging.getLogger(__name__)

STATUS_METHOD = "neuraldbg/status"
STATES = ("starting", "loading", "ready", "busy", "error")


def cached_tokens_note(backend: object) -> str | None:
    """What the status says of a backend whose server does not report how
    many prompt tokens its prefix cache served (``reports_cached_tokens``
    False), so that "0 reused" is not read as "no reuse"."""
    if getattr(backend, "reports_cached_tokens", None) is False:
        return "the model server does not report cached tokens (prefix-cache reuse unknown)"
    return None


def model_name(s: Settings) -> str | None:
    """The model the status names for a backend."""
    if s.backend == "local":
        return s.profile or None
    if s.backend == "remote":
        return s.url or None
    if s.backend == "replay":
        return "replay"
    return None


def sandbox_status(s: Settings) -> dict[str, Any] | None:
    """The tracer's isolation, once probed, where workspace code may run."""
    level = isolation.known()
    return level.as_json() if level is not None and s.allow_execution else None


@dataclass
class StatusReporter:
    """Keeps the server's state and sends ``neuraldbg/status`` at most every
    ``interval`` seconds (the last change always gets through)."""

    send: Callable[[dict[str, Any]], None]
    queue: Callable[[], int]
    backend: Callable[[], str]
    model: Callable[[], str | None]
    note: Callable[[], str | None] = lambda: None  # appended to the "ready" message
    sandbox: Callable[[], dict[str, Any] | None] = lambda: None  # the tracer's isolation, once probed
    interval: float = 0.2
    loading: str | None = None  # message while a model loads
    load_fraction: float | None = None
    error: str | None = None
    busy_with: str = ""
    _throttle: Throttle | None = None
    _last: dict[str, Any] | None = None

    def payload(self) -> dict[str, Any]:
        queue = self.queue()
        if self.loading is not None:
            state, message = "loading", self.loading
        elif self.error is not None:
            state, message = "error", self.error
        elif queue > 0:
            state, message = "busy", f"tracing {self.busy_with}".strip() + f" ({queue} in queue)"
        else:
            state, message = "ready", f"ready ({self.backend()} backend)"
            if note := self.note():
                message += f"; {note}"
        out: dict[str, Any] = {"state": state, "backend": self.backend(), "message": message, "queue": queue}
        model = self.model()
        if model:
            out["model"] = model
        sandbox = self.sandbox()
        if sandbox is not None:
            out["sandbox"] = sandbox
        if state == "loading" and self.load_fraction is not None:
            out["progress"] = round(max(0.0, min(1.0, self.load_fraction)), 3)
        return out

    def changed(self) -> None:
        """Something that the status shows may have changed."""
        if self._throttle is None:
            self._throttle = Throttle(self.interval, self._send)
        self._throttle()

    def send_now(self) -> None:
        if self._throttle is not None:
            self._throttle.cancel()
        self._send()

    def _send(self) -> None:
        data = self.payload()
        if data == self._last:
            return
        self._last = data
        try:
            self.send(data)
        except Exception:  # a dead client must not break the server
            log.debug("status not sent", exc_info=True)


@dataclass
class _Bar:
    token: str
    started: float
    created: asyncio.Task[bool] | None = None
    begun: bool = False
    throttle: Throttle | None = None
    message: str = ""
    percentage: int | None = None  # a bar with a percentage from the start shows as determinate
    on_cancel: Callable[[], None] | None = None  # the bar is cancellable: what its Cancel button does
    end_message: str = "done"


@dataclass
class ProgressBars:
    """Work-done progress bars keyed by a name (one per running trace, one
    for model loading, one per input search)."""

    server: Any  # pygls LanguageServer
    supported: Callable[[], bool]
    delay: float = 0.3  # no bar for work that ends sooner
    report_every: float = 0.25
    _bars: dict[Any, _Bar] = field(default_factory=dict)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def start(self, key: Any, title: str, message: str, *, percentage: int | None = None,
              on_cancel: Callable[[], None] | None = None, at_once: bool = False) -> None:
        """Open a bar for ``key`` (after :attr:`delay` unless ``at_once``:
        work the user asked for by name shows its bar even when short).
        ``on_cancel`` makes it cancellable: the client's Cancel button calls it."""
        if key in self._bars or not self.supported():
            return
        bar = _Bar(token=f"neuraldbg-{next(self._ids)}", started=time.monotonic(), message=message,
                   percentage=percentage, on_cancel=on_cancel)
        self._bars[key] = bar
        loop = asyncio.get_running_loop()
        bar.created = loop.create_task(self._create_later(bar, title, 0.0 if at_once else self.delay))

    def cancel(self, token: str) -> None:
        """``window/workDoneProgress/cancel`` for ``token``."""
        bar = next((b for b in self._bars.values() if b.token == token), None)
        if bar is not None and bar.on_cancel is not None:
            bar.on_cancel()

    async def _create_later(self, bar: _Bar, title: str, delay: float) -> bool:
        if delay > 0:
            await asyncio.sleep(delay)
            if self._bars.get(self._key_of(bar)) is not bar:
                return False
        try:
            future = asyncio.ensure_future(self.server.work_done_progress.create_async(bar.token))
            await asyncio.shield(future)
        except Exception:
            log.debug("progress bar not created", exc_info=True)
            return False
        begin = types.WorkDoneProgressBegin(title=title, message=bar.message, cancellable=bar.on_cancel is not None,
                                            percentage=bar.percentage)
        if self._bars.get(self._key_of(bar)) is not bar:
            # finished while the client answered: open and close it at once
            self._notify(bar.token, begin)
            self._notify(bar.token, types.WorkDoneProgressEnd(message=bar.end_message))
            return True
        self._notify(bar.token, begin)
        bar.begun = True
        return True

    def _key_of(self, bar: _Bar) -> Any:
        for key, value in self._bars.items():
            if value is bar:
                return key
        return None

    def report(self, key: Any, message: str, percentage: int | None = None) -> None:
        bar = self._bars.get(key)
        if bar is None:
            return
        bar.message = message
        bar.percentage = percentage

        def send() -> None:  # made once per bar (the throttle keeps it): it reads the bar's latest
            if bar.begun and self._bars.get(key) is bar:
                self._notify(bar.token, types.WorkDoneProgressReport(message=bar.message, percentage=bar.percentage))

        if bar.throttle is None:
            bar.throttle = Throttle(self.report_every, send)
        bar.throttle()

    def end(self, key: Any, message: str) -> None:
        bar = self._bars.pop(key, None)
        if bar is None:
            return
        bar.end_message = message  # for a bar the client created after the end
        if bar.throttle is not None:
            bar.throttle.cancel()
        if bar.begun:
            self._notify(bar.token, types.WorkDoneProgressEnd(message=message))

    def _notify(self, token: str, value: Any) -> None:
        try:
            self.server.protocol.notify(types.PROGRESS, types.ProgressParams(token=token, value=value))
        except Exception:
            log.debug("progress not sent", exc_info=True)

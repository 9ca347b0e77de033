"""Rate limiting on the event loop: at most one call per interval, and the
last request always lands (a trailing call), so the client never misses the
final state."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class Throttle:
    """``min_delay`` > 0 coalesces a burst: the first call of a burst waits
    that long instead of firing at once (frames of a finished run arrive
    together; one refresh after the burst is worth more than one at its
    start)."""

    def __init__(self, interval: float, action: Callable[[], None], min_delay: float = 0.0) -> None:
        self.interval = interval
        self.min_delay = min_delay
        self.action = action
        self._last = -1e9
        self._pending: asyncio.TimerHandle | None = None

    def __call__(self) -> None:
        """Ask for the action: now if the interval has passed, else once at
        the end of the interval."""
        if self._pending is not None:
            return
        wait = max(self._last + self.interval - time.monotonic(), self.min_delay)
        if wait <= 0:
            self._fire()
        else:
            self._pending = asyncio.get_running_loop().call_later(wait, self._fire)

    def _fire(self) -> None:
        self._pending = None
        self._last = time.monotonic()
        self.action()

    def cancel(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None


class Debouncer:
    """Runs ``action(key)`` once ``delay`` seconds passed without a new call
    for that key."""

    def __init__(self, action: Callable[[str], None]) -> None:
        self.action = action
        self._timers: dict[str, asyncio.TimerHandle] = {}

    def __call__(self, key: str, delay: float) -> None:
        old = self._timers.pop(key, None)
        if old is not None:
            old.cancel()
        self._timers[key] = asyncio.get_running_loop().call_later(max(0.0, delay), self._fire, key)

    def _fire(self, key: str) -> None:
        self._timers.pop(key, None)
        self.action(key)

    def pending(self, key: str) -> bool:
        return key in self._timers

    def cancel(self, key: str) -> None:
        old = self._timers.pop(key, None)
        if old is not None:
            old.cancel()

    def cancel_all(self) -> None:
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()

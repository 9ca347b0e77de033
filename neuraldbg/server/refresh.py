"""workspace/*/refresh requests, each rate-limited and sent only to clients
that declared support: inlay hints after trace frames, code lenses after
input or settings changes, inline values when the debugger stops."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from neuraldbg.server.throttle import Throttle

log = logging.getLogger(__name__)

INLAY_REFRESH_S = 0.3  # at most one workspace/inlayHint/refresh per this interval
LENS_REFRESH_S = 1.0
INLINE_VALUE_REFRESH_S = 0.1  # a stop is rare; coalesce only the stops of one step burst


class Refresh:
    def __init__(self, server: Any, supports: Callable[[str], bool]) -> None:
        """``supports(kind)``: whether the client takes the refresh of ``kind``
        ("inlay", "lens", "inline_value")."""
        self.server = server
        self.supports = supports
        self._throttles: dict[str, Throttle] = {}

    def inlays(self) -> None:
        self._ask("inlay", INLAY_REFRESH_S, 0.05, "workspace_inlay_hint_refresh")

    def lenses(self) -> None:
        self._ask("lens", LENS_REFRESH_S, 0.0, "workspace_code_lens_refresh")

    def inline_values(self) -> None:
        self._ask("inline_value", INLINE_VALUE_REFRESH_S, 0.0, "workspace_inline_value_refresh")

    def inline_values_threadsafe(self, loop: asyncio.AbstractEventLoop | None) -> None:
        """From another thread (the debug adapter's)."""
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.inline_values)

    def _ask(self, kind: str, interval: float, min_delay: float, method: str) -> None:
        if not self.supports(kind):
            return
        throttle = self._throttles.get(kind)
        if throttle is None:
            throttle = self._throttles[kind] = Throttle(interval, lambda: self._send(kind, method),
                                                          min_delay=min_delay)
        throttle()

    def _send(self, kind: str, method: str) -> None:
        try:
            getattr(self.server, method)(None)
        except Exception:
            log.debug("%s refresh not sent", kind, exc_info=True)

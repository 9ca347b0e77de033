"""A one-line progress display on stderr.

On a terminal it redraws one line (``\\r``) at most a few times a second; on
anything else (a log file, CI) it writes a plain line every ``interval_s``
seconds and at the end, so logs stay readable.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

BAR_WIDTH = 24
TTY_REDRAW_S = 0.1


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


class Progress:
    def __init__(self, total: int, label: str, *, stream: TextIO | None = None, interval_s: float = 30.0,
                 tty: bool | None = None) -> None:
        self.total = max(0, total)
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.interval_s = interval_s
        self.done = 0
        self.note = ""
        self._started = time.monotonic()
        self._last_draw = float("-inf")  # the first update draws at once
        self._drawn = False

    def update(self, n: int = 1, note: str = "") -> None:
        self.done += n
        if note:
            self.note = note
        now = time.monotonic()
        wait = TTY_REDRAW_S if self.tty else self.interval_s
        if now - self._last_draw >= wait or self.done >= self.total:
            self._draw(now)

    def line(self, now: float | None = None) -> str:
        now = time.monotonic() if now is None else now
        elapsed = now - self._started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        frac = self.done / self.total if self.total else 1.0
        filled = int(round(frac * BAR_WIDTH))
        eta = (self.total - self.done) / rate if rate > 0 else None
        parts = [
            f"{self.label} [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {self.done}/{self.total}",
            f"{rate:.2f}/s",
            f"ETA {_duration(eta)}" if eta is not None and self.done < self.total else f"{_duration(elapsed)}",
        ]
        if self.note:
            parts.append(self.note)
        return "  ".join(parts)

    def _draw(self, now: float) -> None:
        self._last_draw = now
        try:
            if self.tty:
                self.stream.write("\r\x1b[2K" + self.line(now))
                self._drawn = True
            else:
                self.stream.write(self.line(now) + "\n")
            self.stream.flush()
        except (OSError, ValueError):  # a closed stderr must not stop the evaluation
            pass

    def close(self) -> None:
        """Finish the line (a terminal gets its newline)."""
        if self.tty and self._drawn:
            try:
                self.stream.write("\n")
                self.stream.flush()
            except (OSError, ValueError):
                pass

"""Per-sample results as JSON Lines, appended as they come so that an
interrupted run can be resumed (ids already in the file are skipped)."""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from typing import Any, TextIO

log = logging.getLogger(__name__)


def read_results(path: Path) -> dict[str, dict[str, Any]]:
    """The records of ``path`` by id (a later record of an id wins). A line
    that is not a JSON object with an ``id`` (e.g. torn by a kill mid-write)
    is skipped with a warning; a missing file reads as empty."""
    out: dict[str, dict[str, Any]] = {}
    try:
        fh = path.open(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return out
    with fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                log.warning("%s:%d: not a JSON record (an interrupted write?); it will be redone", path, number)
                continue
            if not isinstance(record, dict) or not isinstance(record.get("id"), str):
                log.warning("%s:%d: a record without an id; ignored", path, number)
                continue
            out[record["id"]] = record
    return out


class ResultWriter:
    """Appends one JSON object per line, flushed after each (thread-safe)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        # A kill mid-write leaves a torn last line: start on a fresh one.
        torn = False
        try:
            with path.open("rb") as raw:
                raw.seek(0, os.SEEK_END)
                if raw.tell() > 0:
                    raw.seek(-1, os.SEEK_END)
                    torn = raw.read(1) != b"\n"
        except FileNotFoundError:
            pass
        self._fh: TextIO = path.open("a", encoding="utf-8")
        self._lock = threading.Lock()
        if torn:
            self._fh.write("\n")

    def write(self, record: dict[str, Any]) -> None:
        line = json.dumps(record)  # ASCII: a lone surrogate in model output cannot break the file
        with self._lock:
            self._fh.write(line + "\n")
            self._fh.flush()

    def close(self) -> None:
        with self._lock:
            if not self._fh.closed:
                self._fh.close()

    def __enter__(self) -> "ResultWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

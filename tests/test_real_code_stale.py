"""Stale work stops and failed work is kept (issue 14, item 6).

A failed trace is an outcome like a good one: looking at its function again
does not run it again (an edit of what it ran does). A run nobody wants any
more (its source was edited, its input changed) is killed for real: the
tracer child and what it started are gone, and the worker is free for the
next trace. A hole-fill search stops trying candidates when its document is
edited. Timings are in benchmarks/bench_stale_work.py; here only behaviour.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from neuraldbg.config import Settings
from neuraldbg.holes.search import FillError
from neuraldbg.server.fills import FILL_CANCELLED, FillService
from neuraldbg.session.selection import TraceSelection
from neuraldbg.session.session import PRIORITY_FOCUS, Session
from neuraldbg.tracer import runner

BOUND_S = 20.0  # how long a test waits for what must happen (a bound against hanging, not a timing)

FAILING = '''import no_such_module_for_neuraldbg  # real code: a dependency this interpreter lacks


def boom(x):
    return x + 1


if __name__ == "__main__":
    boom(1)
'''

SLOW = '''import time


def slow(n):
    """
    >>> slow(30)
    30
    """
    time.sleep(n)
    return n


def fast(n):
    """
    >>> fast(1)
    2
    """
    return n + 1
'''

HOLE = '''import time


def pick(x):
    """
    >>> pick(2)
    Decimal('2.5')
    """
    time.sleep(0.2)
    return ??
'''


@pytest.fixture
def child_runs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """One item per tracer child asked for in this process (the one place a real run begins)."""
    started: list[str] = []
    real = runner._run_child

    def counted(*args: Any, **kwargs: Any) -> Any:
        started.append("run")
        return real(*args, **kwargs)

    monkeypatch.setattr(runner, "_run_child", counted)
    return started


@pytest.fixture
def children(monkeypatch: pytest.MonkeyPatch) -> list[subprocess.Popen[bytes]]:
    """Every tracer child process started in this process."""
    made: list[subprocess.Popen[bytes]] = []
    real = subprocess.Popen

    class Recorded(real):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(runner.subprocess, "Popen", Recorded)
    return made


async def until(condition: Callable[[], bool], what: str) -> None:
    end = asyncio.get_running_loop().time() + BOUND_S
    while not condition():
        assert asyncio.get_running_loop().time() < end, what
        await asyncio.sleep(0.01)


def descendants(pid: int) -> set[int]:
    """``pid`` and every live process below it (from /proc)."""
    parents: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                stat = Path(f"/proc/{name}/stat").read_text()
            except OSError:
                continue
            parents[int(name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = {pid}, [pid]
    while frontier:
        here = frontier.pop()
        kids = {p for p, pp in parents.items() if pp == here} - found
        found |= kids
        frontier.extend(kids)
    return found


def alive(pid: int) -> bool:
    """Running (a zombie is dead: it only waits to be reaped)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def workspace(tmp_path: Path, name: str, text: str, workers: int = 2) -> tuple[Session, str]:
    path = tmp_path / name
    path.write_text(text)
    session = Session(Settings(allow_execution=True, timeout_seconds=60), workers=workers)
    session.open(path.as_uri(), text)
    return session, path.as_uri()


# -- a failed trace is kept -------------------------------------------------------
async def test_a_failed_trace_is_not_run_again_on_the_next_hovers(tmp_path: Path, child_runs: list[str]) -> None:
    session, uri = workspace(tmp_path, "boom.py", FAILING)
    selection = TraceSelection(session)
    try:
        first = await selection.focused(uri, "boom", budget=BOUND_S)
        assert first.entry is not None and first.entry.done.is_set()
        assert first.entry.trace.status == "error" and "ModuleNotFoundError" in (first.entry.trace.error or ""), first.entry.trace
        assert len(child_runs) == 1
        for _ in range(5):  # the user hovers the function again and again
            again = await selection.focused(uri, "boom", budget=BOUND_S)
            assert again.entry is first.entry
        assert len(child_runs) == 1, "the failed trace was run again on a hover"
        # an edit of the function is what makes it run again
        session.replace(uri, FAILING.replace("x + 1", "x + 2"))
        edited = await selection.focused(uri, "boom", budget=BOUND_S)
        assert edited.entry is not first.entry and edited.entry is not None and edited.entry.done.is_set()
        assert len(child_runs) == 2
    finally:
        await session.shutdown()


async def test_a_cancelled_trace_runs_again_when_asked(tmp_path: Path, child_runs: list[str],
                                                       children: list[subprocess.Popen[bytes]]) -> None:
    session, uri = workspace(tmp_path, "slow.py", SLOW)
    selection = TraceSelection(session)
    try:
        entry = session.request(uri, "slow", priority=PRIORITY_FOCUS)
        await until(lambda: len(children) == 1, "the slow run did not start")
        entry.cancel.cancel()  # e.g. the connection is ending
        await asyncio.wait_for(entry.done.wait(), BOUND_S)
        assert entry.trace.status == "error" and entry.trace.error == "cancelled", entry.trace
        shown = selection.shown(uri, "slow", priority=PRIORITY_FOCUS)
        assert shown.entry is not None and shown.entry is not entry, "a cancelled trace was kept as an outcome"
        await until(lambda: len(child_runs) == 2, "the cancelled trace was not run again")
        session.forget(shown.entry.key)
    finally:
        await session.shutdown()


# -- stale runs are killed --------------------------------------------------------
def _edit_slow(session: Session, uri: str) -> None:
    session.replace(uri, SLOW.replace("time.sleep(n)", "time.sleep(n)  # edited"))


def _new_input(session: Session, uri: str) -> None:
    session.set_entry(uri, "slow", "slow(31)")


@pytest.mark.parametrize("make_stale", [_edit_slow, _new_input], ids=["edit", "new-input"])
async def test_a_stale_slow_run_is_killed_and_frees_its_worker(
        tmp_path: Path, children: list[subprocess.Popen[bytes]], make_stale: Callable[[Session, str], None]) -> None:
    session, uri = workspace(tmp_path, "slow.py", SLOW, workers=1)
    try:
        entry = session.request(uri, "slow", priority=PRIORITY_FOCUS)
        await until(lambda: len(children) == 1 and len(descendants(children[0].pid)) > 1,
                    "the slow run's child did not start")
        (child,) = children
        await asyncio.sleep(0.3)  # let the child get into the program (its processes are all there)
        pids = descendants(child.pid)
        assert all(alive(p) for p in pids)
        make_stale(session, uri)
        assert entry.cancel.cancelled
        await until(lambda: not any(alive(p) for p in pids), "the stale run's processes are still running")
        await asyncio.wait_for(entry.done.wait(), BOUND_S)
        assert entry.trace.error == "cancelled", entry.trace
        # its worker is free: the one worker runs the next trace (not after the slow one's 30 s)
        fast = session.request(uri, "fast", priority=PRIORITY_FOCUS)
        await asyncio.wait_for(fast.done.wait(), BOUND_S)
        assert fast.trace.status == "complete", fast.trace
    finally:
        for entry in list(session.entries.values()):
            entry.cancel.cancel()
        await session.shutdown()


# -- fills stop on an edit -----------------------------------------------------------
async def test_an_edit_cancels_the_fill_search_of_its_document(tmp_path: Path, child_runs: list[str]) -> None:
    session, uri = workspace(tmp_path, "pick.py", HOLE)
    service = FillService(session, lambda u: str(tmp_path / "pick.py"))
    doc = session.documents[uri]
    fn = doc.index.function("pick")
    assert fn is not None
    try:
        fill = service.fill(uri, fn, (doc.index.holes[0],))
        await until(lambda: len(child_runs) >= 2, "the search did not start trying candidates")
        tried = len(child_runs)
        session.edit(uri, (0, 0), (0, 0), "# a keystroke\n")
        with pytest.raises(FillError) as failed:
            await asyncio.wait_for(fill, 4 * BOUND_S)
        assert str(failed.value) == FILL_CANCELLED
        # at most the candidate being started as the edit came; no other after
        assert len(child_runs) <= tried + 1, (tried, len(child_runs))
    finally:
        service.shutdown()
        await session.shutdown()

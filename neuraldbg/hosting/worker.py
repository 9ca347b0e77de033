"""One generation at a time on a TokenBackend, fed to asyncio handlers.

The backend runs in a single dedicated thread (a GPU holds one model; its KV
reuse assumes one caller at a time); requests wait their turn in arrival
order. Each job has its own CancelToken: a client that goes away cancels its
job, whether it is running (stopped at the next token, freeing the GPU) or
still waiting (never started).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from neuraldbg.backends.base import BackendError, CancelToken, Cancelled, Sampling, ScoringBackend, TokenBackend, TokenScore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobEnd:
    """The last item of a job's stream."""

    error: str | None = None
    cancelled: bool = False
    cached_tokens: int = 0  # prompt tokens the backend served from its cache


class GenerationWorker:
    def __init__(self, backend: TokenBackend) -> None:
        self.backend = backend
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="neuraldbg-model")
        self._active: set[CancelToken] = set()
        self._lock = threading.Lock()
        self._closed = False

    async def run(
        self, prompt: Sequence[int], *, stop_ids: Sequence[int], sampling: Sampling
    ) -> AsyncIterator[list[int] | JobEnd]:
        """Yield batches of generated ids as they come, then one :class:`JobEnd`.

        Closing the iterator early (the client disconnected) cancels the job.
        """
        if self._closed:
            yield JobEnd(error="the model server is shutting down")
            return
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[int | JobEnd] = asyncio.Queue()
        cancel = CancelToken()

        def put(item: int | JobEnd) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the event loop is gone (server stopped)
                cancel.cancel()

        def job() -> None:
            if cancel.cancelled:
                put(JobEnd(cancelled=True))
                return
            stats = self.backend.stats
            reused_before = stats.reused_tokens
            tokens: Iterator[int] | None = None
            late = 0
            try:
                tokens = self.backend.generate(prompt, stop_ids=stop_ids, sampling=sampling, cancel=cancel)
                for token_id in tokens:
                    put(token_id)
                    # The backend checks its token before the next one; one
                    # that yields again after a cancel does not check at all.
                    if cancel.cancelled:
                        late += 1
                        if late > 1:
                            raise Cancelled()
                put(JobEnd(cached_tokens=max(stats.reused_tokens - reused_before, 0)))
            except Cancelled:
                log.info("generation cancelled (client went away)")
                put(JobEnd(cancelled=True))
            except BackendError as e:
                put(JobEnd(error=str(e)))
            except Exception as e:  # a bug in a backend must not kill the worker thread
                log.exception("generation failed")
                put(JobEnd(error=f"internal error: {type(e).__name__}: {e}"))
            finally:
                close = getattr(tokens, "close", None)
                if close is not None:
                    try:
                        close()
                    except Exception:
                        log.exception("closing the backend's generator failed")

        with self._lock:
            self._active.add(cancel)
        try:
            try:
                self._executor.submit(job)
            except RuntimeError:  # shut down between the check and here
                yield JobEnd(error="the model server is shutting down")
                return
            while True:
                item = await queue.get()
                batch: list[int] = []
                while isinstance(item, int):
                    batch.append(item)
                    if queue.empty():
                        item = None
                        break
                    item = queue.get_nowait()
                if batch:
                    yield batch
                if isinstance(item, JobEnd):
                    yield item
                    return
        finally:
            cancel.cancel()  # no-op after a normal end; stops the GPU work otherwise
            with self._lock:
                self._active.discard(cancel)

    @property
    def can_score(self) -> bool:
        return isinstance(self.backend, ScoringBackend)

    async def score(self, ids: Sequence[int], *, start: int) -> list[TokenScore]:
        """The backend's one-prefill score of ``ids[start:]``, run in the model
        thread like a generation (so the two never overlap). A caller that is
        cancelled (client gone) cancels the job. Raises BackendError."""
        if self._closed:
            raise BackendError("the model server is shutting down")
        backend = self.backend
        assert isinstance(backend, ScoringBackend)
        cancel = CancelToken()
        with self._lock:
            self._active.add(cancel)
        try:
            try:
                future = self._executor.submit(lambda: backend.score(ids, start=start, cancel=cancel))
            except RuntimeError:  # shut down between the check and here
                raise BackendError("the model server is shutting down") from None
            return await asyncio.wrap_future(future)
        finally:
            cancel.cancel()
            with self._lock:
                self._active.discard(cancel)

    def shutdown(self) -> None:
        self._closed = True
        with self._lock:
            for cancel in self._active:
                cancel.cancel()
        # Waiting jobs still run: they see their token set and end at once.
        self._executor.shutdown(wait=False)

"""Micro-batching: concurrent requests grouped into one model call on a worker thread, answered one by one.

Each request submits its own already-prepared items (one per row). A collector task on the event loop
takes the waiting requests, in arrival order, until they hold ``max_batch`` rows or ``max_wait_s`` has
passed since the first one, or no other request is on its way (see ``expect``: waiting for nobody only
adds latency); the batch runs as one call of ``run`` on the worker executor (the event loop
never runs model work), and each request gets back the results of its own items, in order. A request
with more rows than ``max_batch`` runs alone. A request whose caller stopped waiting (timeout) before its
batch was formed is dropped from it. When the call for a batch of several requests fails, each request is
run again alone, so that only the one with the bad rows gets the error.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("omnifuse.serving")
BatchRunner = Callable[[list[Any]], Sequence[Any]]


@dataclass
class _Job:
    items: list[Any]
    future: asyncio.Future[list[Any]]


class MicroBatcher:
    """Groups submitted items into batches for ``run``.

    Args:
        run: called on ``executor`` with the items of a whole batch; returns one result per item.
        executor: where ``run`` runs (one thread keeps model calls in order and off the event loop).
        max_batch: most rows per call (1 turns batching off).
        max_wait_s: how long the first request of a batch waits for others to join it.
        on_batch: called with (rows, requests) after each call, e.g. to record metrics.

    Raises:
        ValueError: ``max_batch`` < 1 or ``max_wait_s`` < 0.
    """

    def __init__(
        self,
        run: BatchRunner,
        executor: Executor,
        max_batch: int = 32,
        max_wait_s: float = 0.005,
        on_batch: Callable[[int, int], None] | None = None,
    ) -> None:
        if max_batch < 1 or max_wait_s < 0:
            raise ValueError(f"max_batch must be >= 1 and max_wait_s >= 0, got {max_batch}, {max_wait_s}")
        self.run, self.executor, self.on_batch = run, executor, on_batch
        self.max_batch, self.max_wait_s = max_batch, max_wait_s
        self._pending: collections.deque[_Job] = collections.deque()
        self._arrived: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._expected = 0
        self._running: list[_Job] = []

    def expect(self, change: int) -> None:
        """Counts requests on their way to ``submit`` (+1 when one starts preparing, -1 when it is done).

        A batch waits for more requests only while some are on their way.
        """
        self._expected += change
        if change < 0 and self._arrived is not None:
            self._arrived.set()  # let the collector see that it may stop waiting

    def start(self) -> None:
        """Starts the collector task on the running event loop."""
        self._arrived = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._collect_forever())

    async def stop(self, timeout_s: float | None = None) -> None:
        """Answers the requests still waiting and lets the batch in flight finish, then stops the collector.

        Args:
            timeout_s: most seconds to wait for them (None: as long as they take); requests still
                unanswered after it fail with a RuntimeError.
        """
        loop = asyncio.get_running_loop()
        deadline = None if timeout_s is None else loop.time() + timeout_s
        while (self._pending or self._running) and self._task is not None and not self._task.done():
            if deadline is not None and loop.time() >= deadline:
                break
            await asyncio.sleep(0.001)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        stopped = RuntimeError("the server stopped before this request was answered")
        _fail(list(self._pending) + self._running, stopped)
        self._pending.clear()

    async def submit(self, items: list[Any]) -> list[Any]:
        """Queues one request's items and waits for their results (in the same order).

        Raises:
            RuntimeError: the batcher is not started.
            Exception: whatever ``run`` raised for the batch the request was in.
        """
        if self._task is None or self._arrived is None:
            raise RuntimeError("MicroBatcher.submit before start()")
        if not items:
            return []
        job = _Job(list(items), asyncio.get_running_loop().create_future())
        self._pending.append(job)
        self._arrived.set()
        return await job.future

    async def _collect_forever(self) -> None:
        """Forms and runs batches until cancelled; an unexpected error fails only its own batch."""
        assert self._arrived is not None
        while True:
            while not self._pending:
                self._arrived.clear()
                await self._arrived.wait()
            await self._wait_for_more()
            jobs = self._take()
            if not jobs:
                continue
            self._running = jobs
            try:
                await self._run(jobs)
            except asyncio.CancelledError:
                _fail(jobs, RuntimeError("the server stopped before this request was answered"))
                raise
            except Exception as exc:  # noqa: BLE001 - never let the collector die: later requests would hang
                log.exception("micro-batch failed unexpectedly")
                _fail(jobs, exc)
            finally:
                self._running = []

    async def _wait_for_more(self) -> None:
        """Waits until ``max_batch`` rows are pending, ``max_wait_s`` has passed or nobody else is coming."""
        assert self._arrived is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait_s
        while self._pending_rows() < self.max_batch and self._expected > 0:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except asyncio.TimeoutError:
                return

    def _pending_rows(self) -> int:
        return sum(len(job.items) for job in self._pending if not job.future.done())

    def _take(self) -> list[_Job]:
        """Pops pending jobs in order up to ``max_batch`` rows (at least one job); drops abandoned ones."""
        jobs: list[_Job] = []
        rows = 0
        while self._pending:
            job = self._pending[0]
            if job.future.done():  # the caller timed out and went away
                self._pending.popleft()
                continue
            if jobs and rows + len(job.items) > self.max_batch:
                break
            jobs.append(self._pending.popleft())
            rows += len(job.items)
        return jobs

    async def _run(self, jobs: list[_Job]) -> None:
        """Runs the jobs as one call; when a call for several jobs fails, runs each job alone (in order)
        so that only the request with the bad items gets the error."""
        items = [item for job in jobs for item in job.items]
        loop = asyncio.get_running_loop()
        try:
            results = list(await loop.run_in_executor(self.executor, self.run, items))
            if len(results) != len(items):
                raise RuntimeError(f"the batch function gave {len(results)} results for {len(items)} items")
        except Exception as exc:  # callers map it to an answer
            if len(jobs) == 1:
                _fail(jobs, exc)
                return
            for job in jobs:
                if not job.future.done():
                    await self._run([job])
            return
        start = 0
        for job in jobs:
            end = start + len(job.items)
            if not job.future.done():
                job.future.set_result(results[start:end])
            start = end
        self._record(len(items), len(jobs))

    def _record(self, rows: int, requests: int) -> None:
        if self.on_batch is None:
            return
        try:
            self.on_batch(rows, requests)
        except Exception:  # noqa: BLE001 - metrics must never break answers
            log.exception("the on_batch callback failed")


def _fail(jobs: list[_Job], exc: BaseException) -> None:
    """Sets ``exc`` on every job whose caller is still waiting."""
    for job in jobs:
        if not job.future.done():
            job.future.set_exception(exc)

"""MicroBatcher with a stand-in runner: grouping, ordering, limits, failures, abandoned requests."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from omnifuse.serving.batching import MicroBatcher


class Recorder:
    """A runner that doubles each item and records the batches it saw (and on which thread)."""

    def __init__(self, fail_on: Any = None) -> None:
        self.batches: list[list[Any]] = []
        self.threads: set[str] = set()
        self.fail_on = fail_on

    def __call__(self, items: list[Any]) -> list[Any]:
        self.threads.add(threading.current_thread().name)
        self.batches.append(list(items))
        if self.fail_on is not None and self.fail_on in items:
            raise RuntimeError("model failed")
        return [item * 2 for item in items]


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


async def _with_batcher(runner: Recorder, max_batch: int, wait_s: float, body: Any) -> Any:
    pool = ThreadPoolExecutor(1, thread_name_prefix="model")
    sizes: list[tuple[int, int]] = []
    batcher = MicroBatcher(runner, pool, max_batch, wait_s, on_batch=lambda r, q: sizes.append((r, q)))
    batcher.start()
    try:
        return await body(batcher), sizes
    finally:
        await batcher.stop()
        pool.shutdown()


def test_concurrent_requests_share_one_call_and_get_their_own_results() -> None:
    runner = Recorder()

    async def body(batcher: MicroBatcher) -> list[list[Any]]:
        return list(await asyncio.gather(*(batcher.submit([i, i + 100]) for i in range(5))))

    results, sizes = _run(_with_batcher(runner, 32, 0.2, body))
    assert results == [[2 * i, 2 * (i + 100)] for i in range(5)]
    assert len(runner.batches) == 1 and sizes == [(10, 5)]
    assert runner.threads == {"model_0"}  # never on the event loop's thread


def test_batches_never_exceed_max_batch_except_for_one_big_request() -> None:
    runner = Recorder()

    async def body(batcher: MicroBatcher) -> list[list[Any]]:
        return list(await asyncio.gather(batcher.submit([1, 2]), batcher.submit([3, 4]),
                                         batcher.submit([5, 6, 7, 8, 9]), batcher.submit([10])))

    results, _ = _run(_with_batcher(runner, 3, 0.05, body))
    assert results == [[2, 4], [6, 8], [10, 12, 14, 16, 18], [20]]
    assert [len(b) for b in runner.batches] == [2, 2, 5, 1]


def test_max_batch_one_runs_each_request_alone() -> None:
    runner = Recorder()

    async def body(batcher: MicroBatcher) -> list[list[Any]]:
        return list(await asyncio.gather(*(batcher.submit([i]) for i in range(4))))

    results, sizes = _run(_with_batcher(runner, 1, 0.05, body))
    assert results == [[0], [2], [4], [6]] and sizes == [(1, 1)] * 4


def test_a_failing_batch_is_rerun_per_request_so_only_the_culprit_fails() -> None:
    runner = Recorder(fail_on=13)

    async def body(batcher: MicroBatcher) -> tuple[Any, Any]:
        first = await asyncio.gather(batcher.submit([1]), batcher.submit([13, 14]), batcher.submit([3]),
                                     return_exceptions=True)
        second = await batcher.submit([2])
        return first, second

    (first, second), sizes = _run(_with_batcher(runner, 8, 0.05, body))
    assert first[0] == [2] and first[2] == [6] and second == [4]
    assert isinstance(first[1], RuntimeError) and str(first[1]) == "model failed"
    assert runner.batches == [[1, 13, 14, 3], [1], [13, 14], [3], [2]]  # the batch, then each alone in order
    assert sizes == [(1, 1), (1, 1), (1, 1)]


def test_a_failing_request_alone_is_not_rerun() -> None:
    runner = Recorder(fail_on=13)

    async def body(batcher: MicroBatcher) -> Any:
        return await asyncio.gather(batcher.submit([13]), return_exceptions=True)

    (result,), _ = _run(_with_batcher(runner, 8, 0.05, body))
    assert isinstance(result, RuntimeError) and runner.batches == [[13]]


def test_the_collector_survives_a_failing_on_batch_and_a_wrong_result_count() -> None:
    calls: list[int] = []

    def runner(items: list[Any]) -> list[Any]:
        calls.append(len(items))
        return [] if items == [99] else [item + 1 for item in items]

    def on_batch(rows: int, requests: int) -> None:
        raise ValueError("metrics broke")

    async def body() -> tuple[Any, Any, Any]:
        pool = ThreadPoolExecutor(1)
        batcher = MicroBatcher(runner, pool, 8, 0.0, on_batch=on_batch)
        batcher.start()
        try:
            first = await asyncio.wait_for(batcher.submit([1]), 2)
            bad = await asyncio.gather(asyncio.wait_for(batcher.submit([99]), 2), return_exceptions=True)
            last = await asyncio.wait_for(batcher.submit([5, 6]), 2)  # would time out if the collector died
            return first, bad[0], last
        finally:
            await batcher.stop()
            pool.shutdown()

    first, bad, last = _run(body())
    assert first == [2] and last == [6, 7]
    assert isinstance(bad, RuntimeError) and "gave 0 results for 1 items" in str(bad)


def test_the_collector_survives_an_unexpected_error_in_its_own_code(monkeypatch: pytest.MonkeyPatch) -> None:
    runner = Recorder()

    async def body(batcher: MicroBatcher) -> tuple[Any, Any]:
        original = batcher._run
        calls = [0]

        async def flaky(jobs: Any) -> None:
            calls[0] += 1
            if calls[0] == 1:
                raise KeyError("internal bug")
            await original(jobs)

        monkeypatch.setattr(batcher, "_run", flaky)
        failed = await asyncio.gather(asyncio.wait_for(batcher.submit([1]), 2), return_exceptions=True)
        later = await asyncio.wait_for(batcher.submit([4]), 2)
        return failed[0], later

    (failed, later), _ = _run(_with_batcher(runner, 8, 0.0, body))
    assert isinstance(failed, KeyError) and later == [8]


def test_stop_lets_the_batch_in_flight_finish() -> None:
    started = threading.Event()

    def slow(items: list[Any]) -> list[Any]:
        started.set()
        threading.Event().wait(0.2)
        return [item * 10 for item in items]

    async def body() -> Any:
        pool = ThreadPoolExecutor(1)
        batcher = MicroBatcher(slow, pool, 8, 0.0)
        batcher.start()
        request = asyncio.ensure_future(batcher.submit([1, 2]))
        while not started.is_set():
            await asyncio.sleep(0.005)
        await batcher.stop()  # before the fix: cancelled the running batch, the request never got an answer
        try:
            return await asyncio.wait_for(request, 1)
        finally:
            pool.shutdown()

    assert _run(body()) == [10, 20]


def test_stop_with_a_timeout_fails_the_batch_in_flight() -> None:
    started, release = threading.Event(), threading.Event()

    def stuck(items: list[Any]) -> list[Any]:
        started.set()
        release.wait(2)
        return items

    async def body() -> Any:
        pool = ThreadPoolExecutor(1)
        batcher = MicroBatcher(stuck, pool, 8, 0.0)
        batcher.start()
        request = asyncio.ensure_future(batcher.submit([1]))
        while not started.is_set():
            await asyncio.sleep(0.005)
        await batcher.stop(timeout_s=0.05)
        release.set()
        pool.shutdown()
        return await asyncio.gather(asyncio.wait_for(request, 1), return_exceptions=True)

    (result,) = _run(body())
    assert isinstance(result, RuntimeError) and "stopped before this request was answered" in str(result)


def test_an_abandoned_request_is_dropped_from_its_batch() -> None:
    runner = Recorder()

    async def body(batcher: MicroBatcher) -> list[Any]:
        batcher.expect(1)  # someone else is on the way: the batch waits up to 0.1 s for them
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(batcher.submit([7]), 0.01)  # gives up before the wait ends
        batcher.expect(-1)
        return await batcher.submit([8])

    result, _ = _run(_with_batcher(runner, 8, 0.1, body))
    assert result == [16] and all(7 not in b for b in runner.batches)


def test_a_batch_waits_only_while_requests_are_on_their_way() -> None:
    runner = Recorder()

    async def body(batcher: MicroBatcher) -> tuple[float, float, list[Any]]:
        loop = asyncio.get_running_loop()
        started = loop.time()
        await batcher.submit([1])  # nobody else is coming: no waiting
        alone = loop.time() - started
        batcher.expect(1)
        first = asyncio.ensure_future(batcher.submit([2]))
        await asyncio.sleep(0.05)
        batcher.expect(-1)  # the expected request arrives and joins the waiting batch
        both = await asyncio.gather(first, batcher.submit([3]))
        return alone, loop.time() - started, list(both)

    (alone, _, both), _ = _run(_with_batcher(runner, 8, 5.0, body))
    assert alone < 1.0 and both == [[4], [6]]
    assert runner.batches == [[1], [2, 3]]


def test_submit_before_start_and_bad_settings() -> None:
    batcher = MicroBatcher(Recorder(), ThreadPoolExecutor(1))
    with pytest.raises(RuntimeError, match="before start"):
        _run(batcher.submit([1]))
    with pytest.raises(ValueError, match="max_batch must be >= 1 and max_wait_s >= 0, got 0, 0.1"):
        MicroBatcher(Recorder(), ThreadPoolExecutor(1), 0, 0.1)

"""Micro-batching through a real server: concurrent requests share forwards and are answered one by one."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest


def _batch_histogram(metrics: str, name: str = "omnifuse_batch_size") -> dict[str, int]:
    """``le`` -> cumulative count of a histogram (rows or requests per forward)."""
    return {m.group(1): int(m.group(2))
            for m in re.finditer(name + r'_bucket\{le="([^"]+)"\} (\d+)', metrics)}


async def _post_all(url: str, bodies: list[dict[str, Any]]) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=len(bodies))
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        return list(await asyncio.gather(*(client.post(f"{url}/v1/predict", json=b) for b in bodies)))


def test_concurrent_requests_are_batched_and_answered_individually(
    start_server: Callable[..., str], test_rows: list[dict[str, Any]], serving_predictor: Any
) -> None:
    url = start_server(max_batch=64, max_wait_ms=200)  # a long wait: every request joins the first batch
    bodies = [{"rows": [test_rows[i % len(test_rows)]]} for i in range(24)]
    bodies[5] = {"rows": [test_rows[5], {**test_rows[6], "photo": "QUJD"}]}  # a bad row in one request
    bodies[9] = {"rows": [test_rows[9], test_rows[10], test_rows[11]]}
    answers = asyncio.run(_post_all(url, bodies))
    alone = httpx.post(f"{url}/v1/predict", json={"rows": test_rows}).json()["predictions"]
    for i, (body, answer) in enumerate(zip(bodies, answers, strict=True)):
        if i == 5:
            assert answer.status_code == 400 and answer.json()["error"]["row"] == 1
            continue
        assert answer.status_code == 200, answer.text
        predictions = answer.json()["predictions"]
        expected = [alone[test_rows.index(row)] for row in body["rows"]]
        assert [p["prediction"] for p in predictions] == [e["prediction"] for e in expected]
        for got, want in zip(predictions, expected, strict=True):
            assert got["probabilities"] == pytest.approx(want["probabilities"], abs=1e-5)
    metrics = httpx.get(f"{url}/metrics").text
    requests = _batch_histogram(metrics, "omnifuse_batch_requests")
    assert requests["1.0"] < requests["+Inf"], requests  # some forward answered several requests
    served = re.search(r"omnifuse_batch_requests_sum (\S+)", metrics)
    assert served and float(served.group(1)) == 23 + 1  # 23 good requests here + the one-row check


def test_max_batch_one_runs_every_row_alone(start_server: Callable[..., str],
                                            test_rows: list[dict[str, Any]]) -> None:
    url = start_server(max_batch=1, max_wait_ms=50)
    answers = asyncio.run(_post_all(url, [{"rows": [row]} for row in test_rows[:8]]))
    assert all(a.status_code == 200 for a in answers)
    buckets = _batch_histogram(httpx.get(f"{url}/metrics").text)
    assert buckets["1.0"] == buckets["+Inf"] >= 8  # warm-up is not counted, every batch had one row


def test_timeout_is_504(start_server: Callable[..., str], test_rows: list[dict[str, Any]]) -> None:
    url = start_server(timeout_s=0.001)  # decoding and preprocessing alone take longer
    answer = httpx.post(f"{url}/v1/predict", json={"rows": test_rows * 4})
    assert answer.status_code == 504
    assert "timeout of 0.001 s" in answer.json()["error"]["message"]
    assert "--timeout-s" in answer.json()["error"]["fix"]

"""A small HTTP load generator: N concurrent asyncio clients POSTing one body in a loop (127.0.0.1 only).

Usage (standalone):
    .venv/bin/python bench/loadgen.py --url http://127.0.0.1:8000/v1/predict --body row.json --clients 16
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


@dataclass
class LoadResult:
    """What one load run measured.

    Attributes:
        latencies: seconds per successful request.
        errors: answers with a status other than 200, and failed connections.
        wall: seconds from the first request to the last answer.
        rows_per_request: rows in each request body.
    """

    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    wall: float = 0.0
    rows_per_request: int = 1

    @property
    def rows_per_s(self) -> float:
        """Answered rows per second."""
        return len(self.latencies) * self.rows_per_request / self.wall if self.wall else 0.0


def check_local(url: str) -> None:
    """Refuses any target other than this machine.

    Raises:
        ValueError: the URL's host is not 127.0.0.1 / localhost.
    """
    host = urlparse(url).hostname
    if host not in LOCAL_HOSTS:
        raise ValueError(f"the load generator only targets 127.0.0.1, got host {host!r}")


async def run_load(url: str, body: bytes, clients: int, requests_per_client: int,
                   headers: dict[str, str] | None = None, rows_per_request: int = 1) -> LoadResult:
    """Runs ``clients`` concurrent loops of ``requests_per_client`` POSTs each (one connection per client)."""
    import httpx

    check_local(url)
    result = LoadResult(rows_per_request=rows_per_request)
    sent_headers = {"content-type": "application/json", **(headers or {})}

    async def client() -> None:
        async with httpx.AsyncClient(timeout=60) as session:
            for _ in range(requests_per_client):
                started = time.perf_counter()
                try:
                    answer = await session.post(url, content=body, headers=sent_headers)
                except httpx.HTTPError:
                    result.errors += 1
                    continue
                if answer.status_code == 200:
                    result.latencies.append(time.perf_counter() - started)
                else:
                    result.errors += 1

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    result.wall = time.perf_counter() - started
    return result


def main() -> None:
    """Command-line entry: prints p50/p99 latency and rows/s."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--body", type=Path, required=True, help='JSON file, e.g. {"rows": [...]}')
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=50, help="per client")
    args = parser.parse_args()
    body = args.body.read_bytes()
    rows = len(json.loads(body).get("rows", [None]))
    result = asyncio.run(run_load(args.url, body, args.clients, args.requests, rows_per_request=rows))
    ordered = sorted(result.latencies) or [float("nan")]
    p50, p99 = ordered[len(ordered) // 2], ordered[int(0.99 * (len(ordered) - 1))]
    print(f"{len(result.latencies)} ok, {result.errors} errors, {result.rows_per_s:.1f} rows/s, "
          f"p50 {1000 * p50:.1f} ms, p99 {1000 * p99:.1f} ms")


if __name__ == "__main__":
    main()

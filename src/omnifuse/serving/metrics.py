"""Prometheus metrics, hand-written (no prometheus_client): counters and histograms in the text format.

Exposed series:
  - ``omnifuse_requests_total{route, method, status}``: answered requests;
  - ``omnifuse_request_duration_seconds{route}``: latency histogram;
  - ``omnifuse_errors_total{route, status}``: answers with status >= 400;
  - ``omnifuse_batch_size``: rows per model forward of the micro-batcher (histogram);
  - ``omnifuse_batch_requests``: requests per model forward (histogram);
  - ``omnifuse_rows_total``: rows predicted.
"""

from __future__ import annotations

import bisect
import math
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Labels = tuple[tuple[str, str], ...]


class Histogram:
    """A cumulative-bucket histogram per label set.

    Args:
        buckets: upper bounds, increasing (``+Inf`` is added).
    """

    def __init__(self, buckets: Sequence[float]) -> None:
        self.buckets = tuple(buckets)
        self.series: dict[Labels, tuple[list[int], list[float]]] = {}  # labels -> (counts, [sum])

    def observe(self, value: float, labels: Labels = ()) -> None:
        """Adds one observation."""
        counts, total = self.series.setdefault(labels, ([0] * (len(self.buckets) + 1), [0.0]))
        counts[bisect.bisect_left(self.buckets, value)] += 1
        total[0] += value

    def lines(self, name: str) -> list[str]:
        """The ``_bucket``, ``_sum`` and ``_count`` lines."""
        out = []
        for labels, (counts, total) in sorted(self.series.items()):
            running = 0
            for bound, count in zip((*self.buckets, math.inf), counts, strict=True):
                running += count
                le = "+Inf" if math.isinf(bound) else _number(bound)
                out.append(f"{name}_bucket{_labels(labels + (('le', le),))} {running}")
            out.append(f"{name}_sum{_labels(labels)} {_number(total[0])}")
            out.append(f"{name}_count{_labels(labels)} {running}")
        return out


class Metrics:
    """The server's metrics; safe to update from the event loop and worker threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[Labels, int] = {}
        self.errors: dict[Labels, int] = {}
        self.latency = Histogram(LATENCY_BUCKETS)
        self.batch_rows = Histogram(SIZE_BUCKETS)
        self.batch_requests = Histogram(SIZE_BUCKETS)
        self.rows = 0

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Counts one answered request and its latency."""
        with self._lock:
            key = (("route", route), ("method", method), ("status", str(status)))
            self.requests[key] = self.requests.get(key, 0) + 1
            self.latency.observe(seconds, (("route", route),))
            if status >= 400:
                err = (("route", route), ("status", str(status)))
                self.errors[err] = self.errors.get(err, 0) + 1

    def observe_batch(self, rows: int, requests: int) -> None:
        """Counts one model forward of the micro-batcher."""
        with self._lock:
            self.batch_rows.observe(rows)
            self.batch_requests.observe(requests)
            self.rows += rows

    def render(self) -> str:
        """All series in the Prometheus text exposition format (version 0.0.4)."""
        with self._lock:
            lines = [
                *_header("omnifuse_requests_total", "counter", "Answered HTTP requests."),
                *(f"omnifuse_requests_total{_labels(k)} {v}" for k, v in sorted(self.requests.items())),
                *_header("omnifuse_errors_total", "counter", "Answers with status >= 400."),
                *(f"omnifuse_errors_total{_labels(k)} {v}" for k, v in sorted(self.errors.items())),
                *_header("omnifuse_request_duration_seconds", "histogram", "Request latency."),
                *self.latency.lines("omnifuse_request_duration_seconds"),
                *_header("omnifuse_batch_size", "histogram", "Rows per model forward (micro-batching)."),
                *self.batch_rows.lines("omnifuse_batch_size"),
                *_header("omnifuse_batch_requests", "histogram", "Requests per model forward."),
                *self.batch_requests.lines("omnifuse_batch_requests"),
                *_header("omnifuse_rows_total", "counter", "Rows predicted."),
                f"omnifuse_rows_total {self.rows}",
            ]
        return "\n".join(lines) + "\n"


def _header(name: str, kind: str, help_text: str) -> list[str]:
    return [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]


def _labels(labels: Labels) -> str:
    if not labels:
        return ""
    body = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
    return "{" + body + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    return repr(float(value)) if not float(value).is_integer() else str(int(value)) + ".0"


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


KNOWN_METHODS = frozenset({"GET", "POST", "HEAD", "OPTIONS", "PUT", "DELETE", "PATCH"})


class MetricsMiddleware:
    """ASGI middleware that counts every HTTP request by route template, method and status.

    The route is the matched path template (``/v1/predict``), or ``other`` for unmatched paths so that
    random URLs cannot blow up the number of series.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Runs the app, recording the status it sends."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), [500]

        async def record_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            route = scope.get("route")
            name = str(getattr(route, "path", "other"))
            method = method_label(scope.get("method", ""))
            self.metrics.observe_request(name, method, status[0], time.perf_counter() - started)


def method_label(method: str) -> str:
    """The HTTP method as a metrics label: one of ``KNOWN_METHODS``, else ``OTHER`` (so that made-up
    methods cannot create new series)."""
    upper = str(method).upper()
    return upper if upper in KNOWN_METHODS else "OTHER"

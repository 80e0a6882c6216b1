"""Prometheus text rendering of the hand-written metrics."""

from __future__ import annotations

from omnifuse.serving.metrics import Histogram, Metrics


def test_histogram_buckets_are_cumulative_with_sum_and_count() -> None:
    hist = Histogram([1, 2, 4])
    for value in (1, 1, 3, 9):
        hist.observe(value)
    assert hist.lines("x") == ['x_bucket{le="1.0"} 2', 'x_bucket{le="2.0"} 2', 'x_bucket{le="4.0"} 3',
                               'x_bucket{le="+Inf"} 4', "x_sum 14.0", "x_count 4"]


def test_render_counts_requests_errors_and_batches() -> None:
    metrics = Metrics()
    metrics.observe_request("/v1/predict", "POST", 200, 0.004)
    metrics.observe_request("/v1/predict", "POST", 400, 0.001)
    metrics.observe_request('/we"ird', "GET", 404, 0.001)
    metrics.observe_batch(rows=5, requests=3)
    text = metrics.render()
    assert 'omnifuse_requests_total{route="/v1/predict",method="POST",status="200"} 1' in text
    assert 'omnifuse_errors_total{route="/v1/predict",status="400"} 1' in text
    assert 'omnifuse_errors_total{route="/we\\"ird",status="404"} 1' in text
    assert 'omnifuse_request_duration_seconds_bucket{route="/v1/predict",le="0.005"} 2' in text
    assert 'omnifuse_batch_size_bucket{le="4.0"} 0' in text
    assert 'omnifuse_batch_size_bucket{le="8.0"} 1' in text
    assert "omnifuse_batch_requests_sum 3.0" in text and "omnifuse_rows_total 5" in text
    assert "# TYPE omnifuse_request_duration_seconds histogram" in text and text.endswith("\n")


def test_made_up_methods_share_one_label() -> None:
    from omnifuse.serving.metrics import method_label

    assert [method_label(m) for m in ("GET", "post", "PATCH", "FOOBAR", "G" * 500, "")] == [
        "GET", "POST", "PATCH", "OTHER", "OTHER", "OTHER"]

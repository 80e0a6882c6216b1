"""HTTP serving: single-row ``/v1/predict`` latency and throughput, micro-batching against ``--max-batch 1``.

Two ``omnifuse serve`` processes (so that the load generator does not share their GIL) serve the same
AV-Digits model (small_cnn image + mel_cnn audio, attention fusion; untrained: speed does not depend on
the weights): one with micro-batching (``--max-batch 32 --max-wait-ms 5``), one with ``--max-batch 1``,
both with one torch thread (on 2 cores, torch's default 2 intra-op threads fight the decoding threads:
a batch-1 forward went from 14 ms to 270 ms on a busy machine).
Each request holds one test row with its PNG and WAV inline as base64. Rounds alternate between the two
servers; the rows report medians over rounds of p50/p99 latency at 1 and 16 concurrent clients and of
rows/s at 16 clients.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from common import AVSetup, BenchResult, Settings, av_digits_setup, median, percentile, prepared_examples
from loadgen import LoadResult, run_load

NAME = "serving"
THREADS = ("--torch-threads", "1", "--prep-threads", "2")  # 2 cores: more threads only contend
BATCHED = ("--max-batch", "32", "--max-wait-ms", "5", *THREADS)
UNBATCHED = ("--max-batch", "1", "--max-wait-ms", "0", *THREADS)


def _body(setup: AVSetup) -> bytes:
    import pandas as pd

    row = pd.read_csv(setup.data / "test.csv").iloc[0].to_dict()
    out = {}
    for name in setup.config.input_names():
        out[name] = base64.b64encode((setup.data / str(row[name])).read_bytes()).decode()
    return json.dumps({"rows": [out]}).encode()


def _save_model(setup: AVSetup, folder: Path) -> None:
    from omnifuse.artifacts.folder import save_model
    from omnifuse.build import build_model

    torch.manual_seed(0)
    save_model(folder, setup.config, setup.preprocessors, setup.task,
               build_model(setup.config, setup.preprocessors, setup.task))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving(model: Path, options: tuple[str, ...]) -> Iterator[str]:
    """Runs ``omnifuse serve`` in a subprocess; yields its base URL once ready."""
    import httpx

    port = _free_port()
    command = [sys.executable, "-c", "from omnifuse.cli import main; main()", "serve", "--model", str(model),
               "--port", str(port), *options]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"omnifuse serve did not start: {' '.join(command)}")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=60)


def _load(url: str, body: bytes, clients: int, per_client: int) -> LoadResult:
    return asyncio.run(run_load(f"{url}/v1/predict", body, clients, per_client))


def _ms(result: LoadResult, q: float) -> float:
    return percentile([s * 1000.0 for s in result.latencies], q)


def run(settings: Settings) -> list[BenchResult]:
    """Measures both servers in alternating rounds; returns latency and throughput rows."""
    rounds = 2 if settings.quick else max(3, settings.repeats)
    per_client_16, per_client_1 = (6, 20) if settings.quick else (20, 60)
    setup = av_digits_setup(192, 64)
    body = _body(setup)
    samples: dict[str, list[float]] = {k: [] for k in (
        "b_p50_1", "u_p50_1", "b_p50_16", "u_p50_16", "b_p99_16", "u_p99_16", "b_rps", "u_rps",
        "b_p99_1", "u_p99_1")}
    errors = 0
    with tempfile.TemporaryDirectory(prefix="omnifuse_bench_serve_") as tmp:
        _save_model(setup, Path(tmp) / "model")
        model = Path(tmp) / "model"
        with serving(model, BATCHED) as batched, serving(model, UNBATCHED) as alone:
            for url in (batched, alone):
                _load(url, body, 4, 5)  # warm-up: connections, caches
            for r in range(rounds):
                order = [("b", batched), ("u", alone)] if r % 2 == 0 else [("u", alone), ("b", batched)]
                for tag, url in order:
                    one, many = _load(url, body, 1, per_client_1), _load(url, body, 16, per_client_16)
                    errors += one.errors + many.errors
                    samples[f"{tag}_p50_1"].append(_ms(one, 50))
                    samples[f"{tag}_p99_1"].append(_ms(one, 99))
                    samples[f"{tag}_p50_16"].append(_ms(many, 50))
                    samples[f"{tag}_p99_16"].append(_ms(many, 99))
                    samples[f"{tag}_rps"].append(many.rows_per_s)
    m = {k: median(v) for k, v in samples.items()}
    forward = forward_ms_per_row(setup)
    details = {"medians": m, "samples": samples, "errors": errors, "rounds": rounds,
               "batched_server": " ".join(BATCHED), "baseline_server": " ".join(UNBATCHED)}
    return [
        BenchResult("serve_rows_per_s_16_clients", "rows/s", m["b_rps"], m["u_rps"], m["b_rps"] / m["u_rps"],
                    ">= 4.0", details, "micro-batching vs --max-batch 1, 16 clients, 1 row per request"),
        BenchResult("serve_forward_ms_per_row_b32_vs_b1", "ms/row", forward[32], forward[1],
                    forward[32] / forward[1], "", {"ms_per_row": forward},
                    "bare forward, 1 torch thread (the servers'): what batching can save at most"),
        BenchResult("serve_p50_1_client", "p50 ms", m["b_p50_1"], m["u_p50_1"], m["b_p50_1"] / m["u_p50_1"],
                    "", {}, f"p99 {m['b_p99_1']:.1f} vs {m['u_p99_1']:.1f} ms"),
        BenchResult("serve_p50_16_clients", "p50 ms", m["b_p50_16"], m["u_p50_16"],
                    m["b_p50_16"] / m["u_p50_16"], "", {},
                    f"p99 {m['b_p99_16']:.1f} vs {m['u_p99_16']:.1f} ms"),
    ]


def forward_ms_per_row(
    setup: AVSetup, sizes: tuple[int, ...] = (1, 32), repeats: int = 15
) -> dict[int, float]:
    """Median bare-forward milliseconds per row at each batch size, with 1 torch thread as the servers run.

    Micro-batching can only save what a batch of B rows costs less than B single rows; for convolutional
    encoders on a CPU the per-row cost hardly falls with the batch size, which bounds the throughput gain.
    """
    import torch

    from omnifuse.build import build_model
    from omnifuse.data.collate import collate

    examples = prepared_examples(setup, "train")
    model = build_model(setup.config, setup.preprocessors, setup.task).eval()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out: dict[int, float] = {}
        with torch.inference_mode():
            for size in sizes:
                batch = collate(examples[:size])
                times = []
                for _ in range(repeats + 3):
                    start = time.perf_counter()
                    model(batch.inputs, batch.presence)
                    times.append(time.perf_counter() - start)
                out[size] = median(times[3:]) * 1000.0 / size
        return out
    finally:
        torch.set_num_threads(threads)

"""HTTP serving: the server's overhead against the bare forward, and micro-batching against ``--max-batch 1``.

Two models (``serving_models``): the compute-bound AV-Digits CNN (small_cnn image + mel_cnn audio,
attention fusion; one test row's PNG and WAV inline as base64 per request) and a MiniLM text classifier
(one 11-token description per request). Each is served by two ``omnifuse serve`` processes (so that the
load generator does not share their GIL): one micro-batching (``--max-batch 32 --max-wait-ms 5``), one with
``--max-batch 1``, both with one torch thread (on 2 cores, torch's default 2 intra-op threads fight the
decoding threads: a batch-1 forward went from 14 ms to 270 ms on a busy machine). ``loadgen`` drives them
from this process over 127.0.0.1. Rounds alternate between the servers; every row is a median over rounds.

- ``serve_overhead_16_clients``: the CNN's served rows/s at 16 clients (micro-batching) against the bare
  forward of the same saved model on the same request row, 16 rows per call (the most 16 one-row clients
  can put in one forward), 1 torch thread, measured in every round (paired ratio; goal >= 0.7);
- ``serve_minilm_rows_per_s_16_clients``: the MiniLM model's rows/s at 16 clients, micro-batching against
  ``--max-batch 1`` (paired ratio; goal >= 4: a transformer's per-call work is what batching amortises);
- the CNN's rows/s and latencies micro-batching against ``--max-batch 1`` (informational: its forward
  costs about as much per row at batch 1 as at batch 32, so batching has little to save), and the bare
  forward per row at each batch size of both models.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import serving_models
import torch
from common import BenchResult, Settings, median, paired_ratio, percentile
from loadgen import LoadResult, run_load

from omnifuse.inference.predictor import load

NAME = "serving"
THREADS = ("--torch-threads", "1", "--prep-threads", "2")  # 2 cores: more threads only contend
BATCHED = ("--max-batch", "32", "--max-wait-ms", "5", *THREADS)
UNBATCHED = ("--max-batch", "1", "--max-wait-ms", "0", *THREADS)
CLIENTS = 16  # concurrent one-row clients; also the batch of the bare forward they are compared with
OVERHEAD_GOAL, MINILM_GOAL = ">= 0.7", ">= 4.0"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Server:
    """A running ``omnifuse serve``: its base URL and process id."""

    url: str
    pid: int

    def cpu_seconds(self) -> float:
        """User + system CPU seconds the server process has used (Linux ``/proc``; nan elsewhere)."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return float("nan")
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def serving(model: Path, options: tuple[str, ...]) -> Iterator[Server]:
    """Runs ``omnifuse serve`` in a subprocess; yields it once ready."""
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
        yield Server(url, process.pid)
    finally:
        process.terminate()
        process.wait(timeout=60)


def _load(url: str, body: bytes, clients: int, per_client: int) -> LoadResult:
    return asyncio.run(run_load(f"{url}/v1/predict", body, clients, per_client))


def _ms(result: LoadResult, q: float) -> float:
    return percentile([s * 1000.0 for s in result.latencies], q)


def batch_rows(url: str) -> tuple[float, float]:
    """(rows, forwards) the server's micro-batcher has run so far (its ``/metrics`` batch-size histogram)."""
    import httpx

    text = httpx.get(f"{url}/metrics", timeout=10).text
    found = {m[0]: float(m[1]) for m in re.findall(r"^omnifuse_batch_size_(sum|count) (\S+)$", text, re.M)}
    return found.get("sum", 0.0), found.get("count", 0.0)


def bare_forward(predictor: Any, body: bytes, batch: int, repeats: int) -> Callable[[], float]:
    """A function timing the loaded model's forward on ``batch`` copies of the request's row.

    The row is decoded and preprocessed as the server does (``parse_json_rows``, ``Predictor.prepare``);
    the forward runs under ``inference_mode`` with 1 torch thread. The function returns the median rows/s
    over ``repeats`` calls (after 2 untimed ones).
    """
    from omnifuse.data.collate import collate
    from omnifuse.serving.decode import Limits, input_columns, parse_json_rows

    rows = parse_json_rows(body, input_columns(predictor.config), Limits())
    examples = predictor.prepare(rows, Path.cwd(), False) * batch
    prepared = collate(examples)
    net = predictor.model

    def measure() -> float:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            times = []
            with torch.inference_mode():
                for i in range(repeats + 2):
                    start = time.perf_counter()
                    net(prepared.inputs, prepared.presence)
                    if i >= 2:
                        times.append(time.perf_counter() - start)
            return batch / median(times)
        finally:
            torch.set_num_threads(threads)
    return measure


def run(settings: Settings) -> list[BenchResult]:
    """Measures the CNN servers, then the MiniLM servers; returns their rows."""
    rounds = 2 if settings.quick else max(3, settings.repeats)
    with tempfile.TemporaryDirectory(prefix="omnifuse_bench_serve_") as tmp:
        setup = serving_models.cnn_setup()
        cnn = serving_models.save_cnn(setup, Path(tmp) / "cnn")
        rows = _cnn_rows(cnn, serving_models.cnn_body(setup), rounds, settings.quick)
    return rows + _minilm_rows(serving_models.minilm_model(), serving_models.minilm_body(), rounds,
                               settings.quick)


def _rounds(model: Path, body: bytes, rounds: int, per_client: tuple[int, int], forward: Callable[[], float],
            one_client: bool) -> dict[str, Any]:
    """Alternating rounds over both servers of ``model``: per round and server, a 1-client run (when
    ``one_client``) and a 16-client run, then the bare forward; returns the samples (lists per key)."""
    samples: dict[str, list[float]] = {}
    errors = 0

    def add(key: str, value: float) -> None:
        samples.setdefault(key, []).append(value)

    with serving(model, BATCHED) as batched, serving(model, UNBATCHED) as alone:
        for server in (batched, alone):
            _load(server.url, body, 4, 5)  # warm-up: connections, caches
        for r in range(rounds):
            order = [("b", batched), ("u", alone)] if r % 2 == 0 else [("u", alone), ("b", batched)]
            for tag, server in order:
                if one_client:
                    one = _load(server.url, body, 1, per_client[1])
                    errors += one.errors
                    add(f"{tag}_p50_1", _ms(one, 50))
                    add(f"{tag}_p99_1", _ms(one, 99))
                before, cpu, own = batch_rows(server.url), server.cpu_seconds(), time.process_time()
                many = _load(server.url, body, CLIENTS, per_client[0])
                rows = max(len(many.latencies), 1)
                add(f"{tag}_server_cpu_ms_per_row", (server.cpu_seconds() - cpu) * 1000.0 / rows)
                add(f"{tag}_loadgen_cpu_ms_per_row", (time.process_time() - own) * 1000.0 / rows)
                after = batch_rows(server.url)
                errors += many.errors
                add(f"{tag}_p50_16", _ms(many, 50))
                add(f"{tag}_p99_16", _ms(many, 99))
                add(f"{tag}_rps", many.rows_per_s)
                add(f"{tag}_rows_per_forward", (after[0] - before[0]) / max(after[1] - before[1], 1.0))
            add("forward_rps", forward())
    return {"samples": samples, "errors": errors, "rounds": rounds}


def _cnn_rows(model: Path, body: bytes, rounds: int, quick: bool) -> list[BenchResult]:
    predictor = load(model)
    forward = bare_forward(predictor, body, CLIENTS, 5 if quick else 15)
    measured = _rounds(model, body, rounds, (6, 20) if quick else (20, 60), forward, one_client=True)
    s = measured["samples"]
    m = {k: median(v) for k, v in s.items()}
    per_row = forward_ms_per_row(predictor, body, (1, CLIENTS, 32), 5 if quick else 15)
    details = measured | {"medians": m, "batched_server": " ".join(BATCHED),
                          "baseline_server": " ".join(UNBATCHED), "forward_batch": CLIENTS}
    return [
        BenchResult("serve_overhead_16_clients", "rows/s", m["b_rps"], m["forward_rps"],
                    paired_ratio(s["b_rps"], s["forward_rps"]), OVERHEAD_GOAL, details,
                    f"CNN served at 16 clients ({m['b_rows_per_forward']:.1f} rows per forward, server "
                    f"CPU {m['b_server_cpu_ms_per_row']:.2f} ms/row) vs its bare forward at batch {CLIENTS} "
                    f"({1000.0 / m['forward_rps']:.2f} ms/row)"),
        BenchResult("serve_rows_per_s_16_clients", "rows/s", m["b_rps"], m["u_rps"],
                    paired_ratio(s["b_rps"], s["u_rps"]), "", {},
                    "CNN, micro-batching vs --max-batch 1, 16 clients, 1 row per request"),
        BenchResult("serve_forward_ms_per_row_b32_vs_b1", "ms/row", per_row[32], per_row[1],
                    per_row[32] / per_row[1], "", {"ms_per_row": per_row},
                    "CNN bare forward, 1 torch thread: what batching can save at most"),
        BenchResult("serve_p50_1_client", "p50 ms", m["b_p50_1"], m["u_p50_1"], m["b_p50_1"] / m["u_p50_1"],
                    "", {}, f"CNN; p99 {m['b_p99_1']:.1f} vs {m['u_p99_1']:.1f} ms"),
        BenchResult("serve_p50_16_clients", "p50 ms", m["b_p50_16"], m["u_p50_16"],
                    m["b_p50_16"] / m["u_p50_16"], "", {},
                    f"CNN; p99 {m['b_p99_16']:.1f} vs {m['u_p99_16']:.1f} ms"),
    ]


def _minilm_rows(model: Path, body: bytes, rounds: int, quick: bool) -> list[BenchResult]:
    predictor = load(model)
    forward = bare_forward(predictor, body, CLIENTS, 5 if quick else 15)
    measured = _rounds(model, body, rounds, (6, 20) if quick else (20, 60), forward, one_client=False)
    s = measured["samples"]
    m = {k: median(v) for k, v in s.items()}
    # 16 closed-loop clients settle into two alternating batches of about 8 (one forms while the
    # other runs), so batch 8's per-row cost is what the served ratio can reach
    per_row = forward_ms_per_row(predictor, body, (1, CLIENTS // 2, CLIENTS), 5 if quick else 15)
    details = measured | {"medians": m, "forward_ms_per_row": per_row, "text": serving_models.MINILM_TEXT,
                          "overhead_ratio": paired_ratio(s["b_rps"], s["forward_rps"])}
    return [
        BenchResult("serve_minilm_rows_per_s_16_clients", "rows/s", m["b_rps"], m["u_rps"],
                    paired_ratio(s["b_rps"], s["u_rps"]), MINILM_GOAL, details,
                    f"MiniLM text, micro-batching ({m['b_rows_per_forward']:.1f} rows per forward, server "
                    f"CPU {m['b_server_cpu_ms_per_row']:.2f} ms/row) vs --max-batch 1 "
                    f"({m['u_server_cpu_ms_per_row']:.2f}), 16 clients"),
        BenchResult("serve_minilm_forward_ms_per_row_b16_vs_b1", "ms/row", per_row[CLIENTS], per_row[1],
                    per_row[CLIENTS] / per_row[1], "", {"ms_per_row": per_row},
                    "MiniLM bare forward, 1 torch thread: what batching can save at most (batch 8: "
                    f"{per_row[CLIENTS // 2]:.2f} ms/row, {per_row[1] / per_row[CLIENTS // 2]:.2f}x fewer)"),
    ]


def forward_ms_per_row(predictor: Any, body: bytes, sizes: tuple[int, ...], repeats: int) -> dict[int, float]:
    """Median bare-forward milliseconds per row at each batch size, with 1 torch thread as the servers run.

    Micro-batching can only save what a batch of B rows costs less than B single rows; for convolutional
    encoders on a CPU the per-row cost hardly falls with the batch size, which bounds the throughput gain.
    """
    return {size: 1000.0 / bare_forward(predictor, body, size, repeats)() for size in sizes}

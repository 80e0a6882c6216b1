"""The OpenAI-compatible chat server: time to first token, and streamed tokens/s at 4 clients vs 1.

A generation model trained for 40 epochs on the AV-Digits QA conversations (48 rows, the init-config
config, ``bench/.cache/chat_server``) is served by uvicorn in a thread of this process
(``create_chat_app``); httpx clients ask it to describe a test row (its longest answers, about 9
tokens), with the row's PNG and WAV as a data URL / base64, and read the server-sent events. Rows:

- ``chat_ttft_p50_1_client`` (and p99 in the details): milliseconds from sending a streamed request to
  its first content piece, one client, against the whole answer's time (informational);
- ``chat_stream_tokens_per_s_4_clients_vs_1``: streamed pieces per second (one piece per token) with 4
  concurrent streaming clients against 1 (informational: a streamed answer is written alone on the model
  thread, so 4 streams share it rather than batch; non-streamed answers are batched).

``--quick``: fewer requests.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from common import CACHE_DIR, BenchResult, Settings, median, percentile

NAME = "chat_server"
FOLDER = CACHE_DIR / "chat_server"
MAX_TOKENS = 24


def _model() -> tuple[Path, dict[str, Any]]:
    """The trained chat model folder (made once) and a request body for one of its test rows."""
    import pandas as pd

    import omnifuse
    from omnifuse.data.io import read_table
    from omnifuse.datasets import build_av_digits_qa
    from omnifuse.workflows.init_config import build_generation_config, conversation_defaults

    data = Path(build_av_digits_qa(FOLDER / "data", n_train=48, n_valid=24, n_test=24, progress=False))
    model = FOLDER / "model"
    if not (model / "model.safetensors").is_file():
        table = read_table(data / "train_conversations.jsonl")
        label, prompt = conversation_defaults(table, None, None)
        assert label is not None
        config, _ = build_generation_config(table, label, None, prompt)
        config = dataclasses.replace(config, training=dataclasses.replace(config.training, epochs=40))
        omnifuse.train(config, data / "train_conversations.jsonl", valid=data / "valid_conversations.jsonl",
                       out=model, overwrite=True, progress=False)
    test = pd.read_csv(data / "test.csv")
    row = test[test["question_type"] == "describe"].iloc[0]  # the longest answers ("A handwritten 3; ...")
    image = base64.b64encode((data / row["image"]).read_bytes()).decode()
    audio = base64.b64encode((data / row["audio"]).read_bytes()).decode()
    content = [{"type": "image_url", "image_url": {"url": f"data:image/png;base64,{image}"}},
               {"type": "input_audio", "input_audio": {"data": audio, "format": "wav"}},
               {"type": "text", "text": str(row["question"])}]
    body = {"messages": [{"role": "user", "content": content}], "max_tokens": MAX_TOKENS, "stream": True,
            "temperature": 0.8, "seed": 1}  # sampling: answers of the full length, reproducible
    return model, body


@contextmanager
def _serving(model: Path) -> Iterator[str]:
    import httpx
    import uvicorn

    import omnifuse
    from omnifuse.serving.chat_app import create_chat_app

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(create_chat_app(omnifuse.load(model)), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


async def _stream(client: Any, url: str, body: dict[str, Any]) -> tuple[float, float, int]:
    """(seconds to the first piece, seconds to the end, pieces) of one streamed answer."""
    started = time.perf_counter()
    first, pieces = float("nan"), 0
    async with client.stream("POST", f"{url}/v1/chat/completions", json=body) as response:
        async for line in response.aiter_lines():
            if line.startswith("data: {") and '"content": "' in line and '"content": ""' not in line:
                pieces += 1
                if pieces == 1:
                    first = time.perf_counter() - started
    return first, time.perf_counter() - started, pieces


async def _clients(url: str, body: dict[str, Any], clients: int,
                   each: int) -> tuple[list[tuple[float, float, int]], float]:
    """Every answer's (first piece s, whole s, pieces) with ``clients`` concurrent streams of ``each``
    requests, and the run's wall-clock seconds."""
    import httpx

    async with httpx.AsyncClient(timeout=120) as client:
        async def one() -> list[tuple[float, float, int]]:
            return [await _stream(client, url, body) for _ in range(each)]

        started = time.perf_counter()
        results = [r for rs in await asyncio.gather(*(one() for _ in range(clients))) for r in rs]
        return results, time.perf_counter() - started


def run(settings: Settings) -> list[BenchResult]:
    """The two rows (see the module docstring)."""
    model, body = _model()
    each = 3 if settings.quick else 10
    with _serving(model) as url:
        asyncio.run(_clients(url, body, 1, 2))  # warm-up
        single = asyncio.run(_clients(url, body, 1, each))
        four = asyncio.run(_clients(url, body, 4, each))
    ttft = [r[0] * 1000.0 for r in single[0]]
    whole = [r[1] * 1000.0 for r in single[0]]
    rates = {name: sum(r[2] for r in rs) / wall for name, (rs, wall) in (("one", single), ("four", four))}
    return [
        BenchResult("chat_ttft_p50_1_client", "ms", median(ttft), median(whole), median(ttft) / median(whole),
                    "", {"ttft_p99_ms": percentile(ttft, 99), "answer_p50_ms": median(whole)},
                    f"first piece vs the whole answer ({MAX_TOKENS} tokens at most, sampled)"),
        BenchResult("chat_stream_tokens_per_s_4_clients_vs_1", "pieces/s", rates["four"], rates["one"],
                    rates["four"] / rates["one"], "", {"requests_per_client": each},
                    "streams are written alone, one at a time on the model thread"),
    ]

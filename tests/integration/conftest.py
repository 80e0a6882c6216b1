"""A small real table (PNG images, WAV clips, text, numbers, categories) and a model trained on it."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from PIL import Image

CLASSES = ["cat", "dog", "owl"]
WORDS = ["whiskers purr", "bark fetch", "hoot night"]


def _image(label: int, rng: np.random.Generator) -> np.ndarray:
    pixels = rng.integers(0, 90, size=(16, 16)).astype(np.uint8)  # (H, W) noise
    pixels[:, label * 5 : label * 5 + 5] = 230
    return pixels


def _clip(label: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(4000) / 8000.0
    return (0.4 * np.sin(2 * np.pi * (300 + 400 * label) * t) + 0.05 * rng.normal(size=t.size)).astype(
        np.float32
    )


def make_table(folder: Path, n: int, seed: int = 0) -> pd.DataFrame:
    """Writes n rows' media under ``folder`` and returns the table (paths relative to ``folder``)."""
    rng = np.random.default_rng(seed)
    (folder / "img").mkdir(parents=True, exist_ok=True)
    (folder / "wav").mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    for i in range(n):
        y = i % 3
        Image.fromarray(_image(y, rng)).save(folder / f"img/{seed}_{i}.png")
        sf.write(folder / f"wav/{seed}_{i}.wav", _clip(y, rng), 8000)
        rows.append(
            {
                "photo": f"img/{seed}_{i}.png",
                "sound": f"wav/{seed}_{i}.wav",
                "note": f"{WORDS[y]} {rng.choice(['big', 'small', 'odd'])} item number {i}",
                "weight": float(y + rng.normal(scale=0.5)),
                "colour": str(rng.choice(["red", "blue"])),
                "animal": CLASSES[y],
            }
        )
    return pd.DataFrame(rows)


CONFIG_YAML = """
label: {column: animal, task: multiclass}
columns:
  photo: {type: image, encoder: {name: small_cnn, size: 16, channels: 1}}
  sound: {type: audio, encoder: {name: mel_cnn, n_mels: 24, max_seconds: 0.5, sample_rate: 8000}}
  note: {type: text, encoder: {name: bow, embed_dim: 16}}
  weight: {type: numeric}
  colour: {type: categorical}
fusion: attention
training: {epochs: 3, batch_size: 16, lr: 0.003, patience: 3}
"""


@pytest.fixture(scope="session")
def table_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("table")
    make_table(folder, 60, seed=0).to_csv(folder / "train.csv", index=False)
    make_table(folder, 24, seed=1).to_csv(folder / "test.csv", index=False)
    (folder / "config.yaml").write_text(CONFIG_YAML)
    return folder


@pytest.fixture(scope="session")
def trained_dir(table_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    import omnifuse

    out = tmp_path_factory.mktemp("model") / "model"
    omnifuse.train(
        table_dir / "config.yaml",
        train=table_dir / "train.csv",
        test=table_dir / "test.csv",
        out=out,
        progress=False,
    )
    return out


def make_captioned_table(folder: Path, n: int, seed: int) -> pd.DataFrame:
    """``make_table`` with a ``caption`` column to write ("a photo of a cat .")."""
    frame = make_table(folder, n, seed)
    frame["caption"] = [f"a photo of a {a} ." for a in frame["animal"]]
    return frame


def wait_ready(url: str, alive: Callable[[], bool], seconds: float = 60.0) -> None:
    """Polls ``GET /ready`` until 200; fails when the server dies or the time is up."""
    deadline = time.monotonic() + seconds
    while True:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                return
        assert alive(), "the server stopped before it was ready"
        assert time.monotonic() < deadline, f"the server at {url} was not ready after {seconds} s"
        time.sleep(0.05)


@contextlib.contextmanager
def serving_app(app: Any) -> Iterator[str]:
    """Serves an ASGI app with uvicorn on a free 127.0.0.1 port in a thread; yields its URL once ready."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_ready(url, thread.is_alive)
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()

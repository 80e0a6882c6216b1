"""Fixtures shared by the dataset builder tests."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest


def _write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fake Fashion-MNIST: 40 train and 20 test pictures whose brightness encodes the class."""
    folder = tmp_path_factory.mktemp("fashion-src")
    for part, n in (("train", 40), ("t10k", 20)):
        labels = np.arange(n) % 10
        images = np.repeat(labels[:, None, None] * 20 + 10, 28 * 28).reshape(n, 28, 28)
        _write_idx(folder / f"{part}-images-idx3-ubyte.gz", images)
        _write_idx(folder / f"{part}-labels-idx1-ubyte.gz", labels)
    return folder

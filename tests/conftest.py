"""Shared fixtures: offline hub, fixed seeds, a small thread count for 2-core machines."""

from __future__ import annotations

import os
import random

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

# One intra-op thread: tiny test models gain nothing from more, and a busy 2-core machine makes
# multi-threaded kernels wait on each other (an EfficientNet forward went from 20 ms to seconds).
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _feature_cache_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh frozen-feature disk cache per test, never the user's ~/.cache."""
    monkeypatch.setenv("OMNIFUSE_CACHE_DIR", str(tmp_path_factory.mktemp("feature_cache")))


@pytest.fixture(autouse=True)
def _seed() -> None:
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)

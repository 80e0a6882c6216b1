"""Builders of the bundled demo tables; each writes a folder of files plus train/valid/test CSVs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from omnifuse.datasets.av_digits import build_av_digits
from omnifuse.datasets.fashion import build_fashion
from omnifuse.datasets.wordnet import build_wordnet

DATASETS: dict[str, Callable[..., Path]] = {
    "av_digits": build_av_digits,
    "fashion": build_fashion,
    "wordnet": build_wordnet,
}

__all__ = ["DATASETS", "build_av_digits", "build_fashion", "build_wordnet"]

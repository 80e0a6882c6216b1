"""Builders of the bundled demo tables; each writes a folder of files plus train/valid/test CSVs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from omnifuse.datasets.av_digits import build_av_digits
from omnifuse.datasets.av_digits_qa import build_av_digits_qa
from omnifuse.datasets.av_digits_shift import build_av_digits_shift
from omnifuse.datasets.fashion import build_fashion
from omnifuse.datasets.fashion_captions import build_fashion_captions
from omnifuse.datasets.wordnet import build_wordnet

DATASETS: dict[str, Callable[..., Path]] = {
    "av_digits": build_av_digits,
    "av_digits_qa": build_av_digits_qa,
    "fashion": build_fashion,
    "fashion_captions": build_fashion_captions,
    "wordnet": build_wordnet,
}

__all__ = [
    "DATASETS",
    "build_av_digits",
    "build_av_digits_qa",
    "build_av_digits_shift",
    "build_fashion",
    "build_fashion_captions",
    "build_wordnet",
]

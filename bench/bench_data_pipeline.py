"""Data pipeline: omnifuse's image and audio decoding + preprocessing against a plain Pillow / soundfile loop.

Items are AV-Digits' PNG pictures (28 x 28 grayscale) and WAV clips (16 kHz PCM16), every file of the
train, valid and test splits. Both sides produce the same tensors:

- image: omnifuse ``ImagePreprocessor(28, channels=1)`` (file checks, decompression-bomb guard, EXIF
  orientation, mode handling) against ``Image.open(p).convert("L").resize((28, 28), BILINEAR)`` ->
  ``torch.from_numpy``;
- audio: omnifuse ``LogMelPreprocessor(n_mels=40, max_seconds=1.5)`` against ``soundfile.read`` + the
  same ``torch.stft`` power spectrum, mel filterbank (built once), log and per-utterance normalisation.

Rows: items/s of omnifuse in one process against the plain loop (goal >= 1.0), and the scaling of a
DataLoader with 2 worker processes against 1 worker (informational: 2 cores also run the main process).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from common import BenchResult, Settings, av_digits_setup, interleaved, median, paired_ratio

NAME = "data_pipeline"
GOAL = ">= 1.0"
N_MELS, MAX_SECONDS, SIZE = 40, 1.5, 28


def _files(setup: Any, column: str) -> list[Path]:
    import pandas as pd

    frames = [pd.read_csv(setup.data / f"{s}.csv") for s in ("train", "valid", "test")]
    return [(setup.data / p).resolve() for f in frames for p in f[column]]


def _plain_image() -> Any:
    import numpy as np
    import torch
    from PIL import Image

    def one(path: Path) -> Any:
        with Image.open(path) as image:
            pixels = np.asarray(image.convert("L").resize((SIZE, SIZE), Image.Resampling.BILINEAR))
        return torch.from_numpy(pixels.copy())[None]  # (1, H, W)
    return one


def _plain_audio() -> Any:
    import soundfile
    import torch

    from omnifuse.data.preprocess.audio import mel_filterbank

    rate, win, hop, n_fft = 16000, 400, 160, 512
    window, filters = torch.hann_window(win), torch.from_numpy(mel_filterbank(rate, n_fft, N_MELS))

    def one(path: Path) -> Any:
        wave, _ = soundfile.read(str(path), frames=math.ceil(MAX_SECONDS * rate), dtype="float32")
        spec = torch.stft(torch.from_numpy(wave), n_fft=n_fft, hop_length=hop, win_length=win, window=window,
                          center=True, pad_mode="constant", return_complex=True)  # (F, T)
        logmel = torch.log(filters @ spec.abs().pow(2) + 1e-6).T  # (T, M)
        return (logmel - logmel.mean()) / (logmel.std(unbiased=False) + 1e-5)
    return one


class _Items:
    """A map-style dataset applying ``fn`` to each path (for the DataLoader rows)."""

    def __init__(self, paths: list[Path], fn: Any) -> None:
        self.paths, self.fn = paths, fn

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> Any:
        return self.fn(self.paths[i])


def _as_list(items: list[Any]) -> list[Any]:
    return items


def _each(paths: list[Path], fn: Any) -> Any:
    return lambda: [fn(p) for p in paths]


def _loader_pass(paths: list[Path], fn: Any, workers: int) -> Any:
    from torch.utils.data import DataLoader

    def go() -> None:
        for _ in DataLoader(_Items(paths, fn), batch_size=64, num_workers=workers, collate_fn=_as_list):
            pass
    return go


def run(settings: Settings) -> list[BenchResult]:
    """Per modality: one-process rate against the plain loop, and 2 against 1 DataLoader workers."""
    from omnifuse.data.preprocess.audio import LogMelPreprocessor
    from omnifuse.data.preprocess.image import ImagePreprocessor

    setup = av_digits_setup(192, 64)
    ours = {"image": ImagePreprocessor(SIZE, channels=1),
            "audio": LogMelPreprocessor(n_mels=N_MELS, max_seconds=MAX_SECONDS)}
    plain = {"image": _plain_image(), "audio": _plain_audio()}
    repeats = 2 if settings.quick else max(settings.repeats, 5)
    results: list[BenchResult] = []
    for modality in ("image", "audio"):
        paths = _files(setup, modality)
        sides = {"omnifuse": _each(paths, ours[modality]), "plain": _each(paths, plain[modality])}
        samples = interleaved(sides, repeats, settings.warmup)
        results.append(_row(f"data_pipeline_{modality}", samples, len(paths), "omnifuse", "plain", GOAL,
                            f"{len(paths)} files, one process: omnifuse preprocessor vs plain loop"))
        many = paths * (2 if settings.quick else 8)
        fn = ours[modality]
        scaling = interleaved({"2": _loader_pass(many, fn, 2), "1": _loader_pass(many, fn, 1)},
                              1 if settings.quick else 3, 0)
        results.append(_row(f"data_pipeline_{modality}_2_workers", scaling, len(many), "2", "1", "",
                            f"{len(many)} files, DataLoader 2 workers vs 1 (start-up included)"))
    return results


def _row(name: str, samples: dict[str, list[Any]], items: int, ours: str, base: str, goal: str,
         note: str) -> BenchResult:
    wall = {side: [s.wall for s in samples[side]] for side in samples}
    rate = {side: items / median(w) for side, w in wall.items()}
    details = {"items": items, "median_seconds": {side: median(w) for side, w in wall.items()}}
    return BenchResult(name, "items/s", rate[ours], rate[base], paired_ratio(wall[base], wall[ours]), goal,
                       details, note)

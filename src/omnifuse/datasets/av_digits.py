"""AV-Digits: a small audio-visual digit table where each modality alone is noisy and fusing both wins.

Each row pairs a real handwritten digit (scikit-learn ``load_digits``, upscaled to 28x28, most pixels dropped)
with the same digit spoken by Debian ``espeak-ng`` (several English accents, speeds and pitches) buried in
white noise. The test split is spoken by an accent never heard in train or valid.

Difficulty (defaults, seed 0, test split): a tiny CNN scores about 92% on images alone and 88% on audio
alone, a tiny late-fusion CNN 99%; logistic regression 73% (pixels), 81% (log-mel statistics), 97% (both).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import soundfile as sf
import soxr
from PIL import Image
from rich.progress import Progress

from omnifuse.datasets._common import (
    build_atomically,
    progress_bar,
    split_sizes,
    stratified_order,
    write_csvs,
)
from omnifuse.errors import OptionError, SetupError

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
# espeak-ng voices that need no mbrola; checked with `espeak-ng --voices=en`.
TRAIN_VOICES = (
    "en-us",
    "en-gb",
    "en-gb-x-rp",
    "en-gb-x-gbcwmd",
    "en-gb-x-gbclan",
    "en-us-nyc",
)
# Validation and test each hear an accent training never does, so early stopping rewards a model that
# generalises across accents rather than one that memorised the training voices' clips.
VALID_VOICES = ("en-gb-scotland",)
TEST_VOICES = ("en-029",)  # Caribbean accent: held out, heard only in the test split
SPEEDS_WPM = (130, 150, 175, 200)
PITCHES = (30, 45, 60, 75)
SAMPLE_RATE = 16_000
IMAGE_SIZE = 28
N_DIGITS_AVAILABLE = 1797  # rows of sklearn.datasets.load_digits
FORMAT_VERSION = 1

ClipKey = tuple[str, int, int, int]  # (voice, speed in wpm, pitch 0..99, digit)


def build_av_digits(
    out_dir: Path,
    *,
    n_train: int = 600,
    n_valid: int = 150,
    n_test: int = 300,
    seed: int = 0,
    progress: bool = True,
    pixel_drop: float = 0.75,
    snr_db: float = -12.0,
    voices: tuple[Sequence[str], Sequence[str], Sequence[str]] | None = None,
) -> Path:
    """Build the AV-Digits table (image + audio of the same digit, label 0..9) in ``out_dir``.

    Writes ``images/<split>_<i>.png`` (28x28 grayscale), ``audio/<split>_<i>.wav`` (16 kHz mono, 16-bit),
    ``train.csv`` / ``valid.csv`` / ``test.csv`` with columns ``image``, ``audio``, ``label`` (paths relative
    to ``out_dir``) and a ``BUILD.json`` marker. A second call with the same arguments returns at once.

    Args:
        out_dir: folder to create (built in a temporary sibling, then renamed).
        n_train, n_valid, n_test: rows per split; images are disjoint across splits.
        seed: seed of every random choice; the same seed gives the same files.
        progress: show a rich progress bar.
        pixel_drop: fraction of image pixels set to 0, per image.
        snr_db: signal-to-noise ratio of the white noise added to each spoken clip (-12 dB: noise power
            about 16x the speech power).
        voices: (train, valid, test) espeak-ng voice names (``espeak-ng --voices``; variants such as
            ``en-us+f3`` work too); default: ``TRAIN_VOICES``, ``VALID_VOICES``, ``TEST_VOICES``. Other
            draws with other accents check that a model did not just fit the default voices.

    Returns:
        ``out_dir``, absolute.

    Raises:
        SetupError: ``espeak-ng`` is not installed.
        OptionError: the splits ask for more than the 1797 digit images, or a parameter is out of range.
    """
    sizes = split_sizes(n_train, n_valid, n_test)
    check_params(sizes, pixel_drop)
    by_split = split_voices(voices)
    espeak = require_espeak()
    params: dict[str, Any] = {
        "builder": "av_digits",
        "format": FORMAT_VERSION,
        **{f"n_{k}": v for k, v in sizes.items()},
        "seed": seed,
        "voices": [list(v) for v in by_split.values()],
        "pixel_drop": pixel_drop,
        "snr_db": snr_db,
    }

    def fill(folder: Path) -> None:
        _fill(folder, sizes, seed, pixel_drop, snr_db, espeak, progress, by_split)

    return build_atomically(out_dir, params, fill)


def require_espeak() -> str:
    """Return the path of ``espeak-ng``.

    Raises:
        SetupError: it is not on PATH, with the command that installs it.
    """
    path = shutil.which("espeak-ng")
    if path is None:
        raise SetupError(
            "espeak-ng is not installed, so AV-Digits cannot make its spoken digits; run `make setup` "
            "(or `sudo apt-get install espeak-ng`) and try again"
        )
    return path


def split_voices(
    voices: tuple[Sequence[str], Sequence[str], Sequence[str]] | None,
) -> dict[str, tuple[str, ...]]:
    """{split: voices}, the defaults when ``voices`` is None.

    Raises:
        OptionError: a split has no voice.
    """
    chosen = voices or (TRAIN_VOICES, VALID_VOICES, TEST_VOICES)
    out = {split: tuple(v) for split, v in zip(("train", "valid", "test"), chosen, strict=True)}
    empty = [split for split, v in out.items() if not v]
    if empty:
        raise OptionError(f"voices: the {', '.join(empty)} split(s) have no voice; give at least one "
                         "espeak-ng voice name per split (see `espeak-ng --voices=en`)")
    return out


def check_params(sizes: dict[str, int], pixel_drop: float) -> None:
    """Check the split sizes against the digit images available and the pixel drop.

    Raises:
        OptionError: the splits ask for more than the 1797 images, or ``pixel_drop`` is outside [0, 1).
    """
    total = sum(sizes.values())
    if total > N_DIGITS_AVAILABLE:
        raise OptionError(
            f"n_train + n_valid + n_test = {total}, but load_digits has only {N_DIGITS_AVAILABLE} images "
            "and splits must not share one; lower the split sizes"
        )
    if not 0.0 <= pixel_drop < 1.0:
        raise OptionError(f"pixel_drop={pixel_drop} must be in [0, 1); 0.75 drops 75% of the pixels")


def _fill(
    folder: Path,
    sizes: dict[str, int],
    seed: int,
    pixel_drop: float,
    snr_db: float,
    espeak: str,
    show: bool,
    voices: dict[str, tuple[str, ...]],
) -> None:
    """Write images, audio and CSVs of every split into ``folder``."""
    (folder / "images").mkdir()
    (folder / "audio").mkdir()
    images, labels = load_digit_images()
    indices = split_indices(labels, sizes, np.random.default_rng([seed, 0]))
    plan_rng = np.random.default_rng([seed, 1])
    plans = {split: plan_clips(labels[idx], voices[split], plan_rng) for split, idx in indices.items()}
    with progress_bar(show) as bar:
        clips = synthesize_all(sorted({k for keys in plans.values() for k in keys}), espeak, bar)
        rows_task = bar.add_task("AV-Digits rows", total=sum(sizes.values()))
        tables = {}
        for s, (split, idx) in enumerate(indices.items()):
            rng = np.random.default_rng([seed, 2, s])
            tables[split] = _write_split(
                folder, split, images[idx], plans[split], clips, pixel_drop, snr_db, rng
            )
            bar.advance(rows_task, len(idx))
    write_csvs(folder, tables)


def load_digit_images() -> tuple[np.ndarray, np.ndarray]:
    """Return scikit-learn's handwritten digits as ``(images (N, 8, 8) in 0..16, labels (N,))``."""
    from sklearn.datasets import load_digits  # slow import, only needed when building

    digits = load_digits()
    return np.asarray(digits.images, dtype=np.float32), np.asarray(digits.target, dtype=np.int64)


def split_indices(
    labels: np.ndarray, sizes: dict[str, int], rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Disjoint, class-balanced row indices per split, each split in shuffled order."""
    order = stratified_order(labels, rng)
    out, start = {}, 0
    for split, n in sizes.items():
        out[split] = rng.permutation(order[start : start + n])
        start += n
    return out


def plan_clips(labels: np.ndarray, voices: tuple[str, ...], rng: np.random.Generator) -> list[ClipKey]:
    """Pick a (voice, speed, pitch, digit) clip for every row from the split's voices."""
    return [
        (str(rng.choice(voices)), int(rng.choice(SPEEDS_WPM)), int(rng.choice(PITCHES)), int(digit))
        for digit in labels
    ]


def synthesize_all(keys: Sequence[ClipKey], espeak: str, bar: Progress) -> dict[ClipKey, np.ndarray]:
    """Speak every distinct clip once, on a small thread pool (espeak-ng runs as a subprocess)."""
    task = bar.add_task("espeak-ng clips", total=len(keys))
    workers = max(2, min(4, os.cpu_count() or 2))
    clips: dict[ClipKey, np.ndarray] = {}
    with tempfile.TemporaryDirectory(prefix="av_digits_") as tmp, ThreadPoolExecutor(workers) as pool:
        futures = {
            pool.submit(_synthesize, espeak, key, Path(tmp) / f"{i}.wav"): key for i, key in enumerate(keys)
        }
        for future in as_completed(futures):
            clips[futures[future]] = future.result()
            bar.advance(task)
    return clips


def _synthesize(espeak: str, key: ClipKey, wav_path: Path) -> np.ndarray:
    """Speak one digit word with espeak-ng; return float32 mono samples at 16 kHz.

    Raises:
        SetupError: espeak-ng failed (its stderr is included).
    """
    voice, speed, pitch, digit = key
    cmd = [espeak, "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(wav_path), DIGIT_WORDS[digit]]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0 or not wav_path.is_file():
        raise SetupError(
            f"espeak-ng failed on voice '{voice}' (exit {result.returncode}): {result.stderr.strip()}; "
            "check `espeak-ng --voices=en` lists it, or reinstall with `make setup`"
        )
    return read_mono(wav_path)


def read_mono(wav_path: Path) -> np.ndarray:
    """A speech engine's WAV as float32 mono samples at 16 kHz (channels averaged, resampled)."""
    samples, rate = sf.read(wav_path, dtype="float32", always_2d=True)
    mono = samples.mean(axis=1)  # (T,)
    if rate != SAMPLE_RATE:
        mono = soxr.resample(mono, rate, SAMPLE_RATE)
    return np.asarray(mono, dtype=np.float32)


def _write_split(
    folder: Path,
    split: str,
    images: np.ndarray,
    keys: list[ClipKey],
    clips: dict[ClipKey, np.ndarray],
    pixel_drop: float,
    snr_db: float,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Write the PNG and WAV of every row of one split; return its table."""
    rows = []
    for i, (image, key) in enumerate(zip(images, keys, strict=True)):
        image_rel, audio_rel = f"images/{split}_{i}.png", f"audio/{split}_{i}.wav"
        write_pair(folder, image_rel, audio_rel, image, clips[key], pixel_drop, snr_db, rng)
        rows.append({"image": image_rel, "audio": audio_rel, "label": key[3]})
    return pd.DataFrame(rows, columns=["image", "audio", "label"])


def write_pair(
    folder: Path,
    image_rel: str,
    audio_rel: str,
    image: np.ndarray,
    clip: np.ndarray,
    pixel_drop: float,
    snr_db: float,
    rng: np.random.Generator,
) -> None:
    """Write one row's degraded digit picture (PNG) and noisy spoken clip (16 kHz PCM-16 WAV).

    Args:
        folder: the dataset folder; ``image_rel`` and ``audio_rel`` are relative to it.
        image: an 8x8 digit in 0..16 (see :func:`degrade_image`).
        clip: float32 mono samples at 16 kHz (see :func:`add_noise`).
        pixel_drop, snr_db, rng: as in :func:`build_av_digits`; the image draws from ``rng`` first.
    """
    Image.fromarray(degrade_image(image, pixel_drop, rng)).save(folder / image_rel)
    sf.write(folder / audio_rel, add_noise(clip, snr_db, rng), SAMPLE_RATE, subtype="PCM_16")


def degrade_image(image: np.ndarray, pixel_drop: float, rng: np.random.Generator) -> np.ndarray:
    """Upscale an 8x8 digit (0..16) to 28x28 uint8 (bilinear) and zero a random ``pixel_drop`` of pixels."""
    small = Image.fromarray(np.clip(image * (255.0 / 16.0), 0, 255).astype(np.uint8))
    big = np.asarray(small.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BILINEAR)).copy()  # (28, 28)
    big[rng.random(big.shape) < pixel_drop] = 0
    return big


def add_noise(clip: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """Add white noise at ``snr_db`` (power ratio over the whole clip) and scale the peak to 0.9."""
    signal_power = float(np.mean(clip**2)) or 1e-8
    noise_power = signal_power * 10.0 ** (-snr_db / 10.0)
    noisy = clip + rng.normal(0.0, np.sqrt(noise_power), size=clip.shape).astype(np.float32)
    peak = float(np.max(np.abs(noisy))) or 1.0
    return (noisy * (0.9 / peak)).astype(np.float32)

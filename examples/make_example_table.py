"""Writes a tiny multimodal example table for the configs in this folder; nothing is downloaded.

Every row is a pet review: a caption (``text``), a photo (``image``, a 32 x 32 RGB PNG), the pet's call
(``audio``, a 0.5 s mono 16 kHz WAV), a binary label ``sentiment`` (positive | negative) and a multiclass
label ``animal`` (cat | dog | bird). Each modality carries both labels, noisily, so fusion helps:

- image: a square in a class colour (cat red, dog green, bird blue) on a bright (positive) or dark
  (negative) background, with pixel noise; colour and background are each right 75% of the time;
- audio: a tone at a class pitch (cat 440 Hz, dog 220 Hz, bird 1760 Hz) that glides up (positive) or down
  (negative), in loud noise;
- text: a sentiment word and an animal word, each right 75% of the time, among filler words.

Usage:
    python examples/make_example_table.py OUT_DIR [--rows N] [--seed S]

writes OUT_DIR/train.csv (N rows), OUT_DIR/test.csv (N // 3 rows, at least 12) and the media under
OUT_DIR/img/ and OUT_DIR/wav/ (paths in the tables are relative to OUT_DIR).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import soundfile as sf
from PIL import Image

ANIMALS = ["cat", "dog", "bird"]
SENTIMENTS = ["negative", "positive"]
ANIMAL_WORDS = {"cat": ["cat", "kitten"], "dog": ["dog", "puppy"], "bird": ["bird", "parrot"]}
SENTIMENT_WORDS = {"positive": ["lovely", "great", "happy"], "negative": ["awful", "grumpy", "sad"]}
FILLER = ["my", "the", "little", "old", "new", "friend", "today", "again", "really", "very", "at", "home"]
PITCH_HZ = {"cat": 440.0, "dog": 220.0, "bird": 1760.0}
SAMPLE_RATE = 16000
SECONDS = 0.5
SIDE = 32


def make_image(animal: str, sentiment: str, rng: np.random.Generator) -> np.ndarray:
    """A (SIDE, SIDE, 3) uint8 picture: a class-coloured square on a bright or dark background.

    The colour and the background are each right 75% of the time (else drawn at random).
    """
    animal = animal if rng.random() < 0.75 else str(rng.choice(ANIMALS))
    sentiment = sentiment if rng.random() < 0.75 else str(rng.choice(SENTIMENTS))
    level = 170 if sentiment == "positive" else 60
    pixels = rng.normal(level, 25, size=(SIDE, SIDE, 3))  # (H, W, 3)
    top, left = rng.integers(0, SIDE - 12, size=2)
    channel = ANIMALS.index(animal)
    pixels[top : top + 12, left : left + 12, :] = 30
    pixels[top : top + 12, left : left + 12, channel] = 240
    return np.clip(pixels, 0, 255).astype(np.uint8)


def make_clip(animal: str, sentiment: str, rng: np.random.Generator) -> np.ndarray:
    """A mono float32 clip: a tone at the class pitch gliding up (positive) or down (negative), in noise."""
    t = np.arange(int(SAMPLE_RATE * SECONDS)) / SAMPLE_RATE
    start = PITCH_HZ[animal] * rng.uniform(0.95, 1.05)
    glide = 1.0 + (0.5 if sentiment == "positive" else -0.33) * t / SECONDS  # frequency factor over time
    phase = 2 * np.pi * np.cumsum(start * glide) / SAMPLE_RATE
    return (0.3 * np.sin(phase) + 0.3 * rng.normal(size=t.size)).astype(np.float32)


def make_caption(animal: str, sentiment: str, rng: np.random.Generator) -> str:
    """A short caption whose animal and sentiment words are each right 75% of the time."""
    shown_animal = animal if rng.random() < 0.75 else str(rng.choice(ANIMALS))
    shown_sentiment = sentiment if rng.random() < 0.75 else str(rng.choice(SENTIMENTS))
    words = [
        str(rng.choice(SENTIMENT_WORDS[shown_sentiment])),
        str(rng.choice(ANIMAL_WORDS[shown_animal])),
        *(str(w) for w in rng.choice(FILLER, size=int(rng.integers(3, 7)))),
    ]
    rng.shuffle(words)
    return " ".join(words)


def make_rows(folder: Path, split: str, n: int, rng: np.random.Generator) -> pd.DataFrame:
    """Writes the media of ``n`` rows under ``folder`` and returns their table."""
    rows: list[dict[str, Any]] = []
    for i in range(n):
        animal = ANIMALS[i % len(ANIMALS)]
        sentiment = SENTIMENTS[(i // len(ANIMALS)) % len(SENTIMENTS)]
        image, audio = f"img/{split}_{i}.png", f"wav/{split}_{i}.wav"
        Image.fromarray(make_image(animal, sentiment, rng)).save(folder / image)
        sf.write(folder / audio, make_clip(animal, sentiment, rng), SAMPLE_RATE)
        rows.append(
            {
                "text": make_caption(animal, sentiment, rng),
                "image": image,
                "audio": audio,
                "sentiment": sentiment,
                "animal": animal,
            }
        )
    return pd.DataFrame(rows).sample(frac=1.0, random_state=int(rng.integers(1 << 31))).reset_index(drop=True)


def write_example_table(out: str | Path, rows: int = 120, seed: int = 0) -> tuple[Path, Path]:
    """Writes ``out``/train.csv (``rows`` rows), ``out``/test.csv and their media.

    Args:
        out: the folder (created if needed).
        rows: training rows; the test table has ``max(12, rows // 3)``.
        seed: seed of every random choice (the same seed writes the same files).
    Returns:
        (train.csv path, test.csv path).
    Raises:
        ValueError: ``rows`` is below 12 (too few rows for a stratified validation split of 6 classes).
    """
    if rows < 12:
        raise ValueError(f"--rows {rows} is too small; use at least 12 so every class is in every split")
    folder = Path(out)
    (folder / "img").mkdir(parents=True, exist_ok=True)
    (folder / "wav").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = folder / "train.csv", folder / "test.csv"
    make_rows(folder, "train", rows, rng).to_csv(paths[0], index=False)
    make_rows(folder, "test", max(12, rows // 3), rng).to_csv(paths[1], index=False)
    return paths


def main(argv: list[str] | None = None) -> None:
    """Command line: ``make_example_table.py OUT_DIR [--rows N] [--seed S]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="folder to write train.csv, test.csv, img/ and wav/ into")
    parser.add_argument("--rows", type=int, default=120, help="training rows (test: rows // 3, at least 12)")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    args = parser.parse_args(argv)
    try:
        train, test = write_example_table(args.out, args.rows, args.seed)
    except ValueError as exc:
        parser.error(str(exc))
    print(f"wrote {train} and {test}")


if __name__ == "__main__":
    main()

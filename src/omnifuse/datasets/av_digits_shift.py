"""A shifted AV-Digits test table: the same pictures, the digits spoken by another speech engine.

A model trained on AV-Digits hears only espeak-ng. This table keeps an AV-Digits split's pictures (the same
PNG files) and labels and replaces each clip with the digit spoken by Debian ``flite`` (its own voices,
another synthesis method), degraded with the same white noise. It is a shift of one modality: the
pictures are in distribution, the voice is not. ``omnifuse evaluate --shift-test`` and the OOD scores of a
model folder are measured on it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from omnifuse.datasets._common import build_atomically, progress_bar
from omnifuse.datasets.av_digits import DIGIT_WORDS, SAMPLE_RATE, add_noise, read_mono
from omnifuse.errors import DataError, OptionError, SetupError

FLITE_VOICES = ("kal", "awb", "rms", "slt")  # `flite -lv`; none of them is an espeak-ng voice
STRETCHES = (0.8, 1.0, 1.25)  # flite's duration_stretch: faster, normal, slower speech
FORMAT_VERSION = 1


def build_av_digits_shift(
    table_dir: Path, out_dir: Path, *, split: str = "test", seed: int = 0, progress: bool = True,
    voices: tuple[str, ...] = FLITE_VOICES,
) -> Path:
    """Writes ``out_dir/test.csv`` (``image``, ``audio``, ``label``): ``split`` of the AV-Digits table in
    ``table_dir`` with its pictures copied and each digit spoken anew by flite at the table's noise level.

    Raises:
        SetupError: flite is not installed.
        DataError: ``table_dir`` is not an AV-Digits table (no BUILD.json or no ``<split>.csv``).
        OptionError: no voice.
    """
    flite = shutil.which("flite")
    if flite is None:
        raise SetupError("flite is not installed, so the shifted table cannot speak its digits; run "
                         "`sudo apt-get install flite` and try again")
    if not voices:
        raise OptionError("voices: give at least one flite voice (see `flite -lv`)")
    table_dir = Path(table_dir).resolve()
    build, csv = table_dir / "BUILD.json", table_dir / f"{split}.csv"
    if not build.is_file() or not csv.is_file():
        raise DataError(f"{table_dir} is not an AV-Digits table with a {split!r} split (BUILD.json and "
                        f"{split}.csv); build one with omnifuse.datasets.build_av_digits first")
    snr_db = float(json.loads(build.read_text(encoding="utf-8"))["snr_db"])
    params = {"builder": "av_digits_shift", "format": FORMAT_VERSION, "table": str(table_dir),
              "split": split, "seed": seed, "voices": list(voices), "snr_db": snr_db}
    frame = pd.read_csv(csv)

    def fill(folder: Path) -> None:
        _fill(folder, table_dir, frame, voices, snr_db, np.random.default_rng([seed, 7]), progress, flite)

    return build_atomically(out_dir, params, fill, splits=("test",))


def _fill(folder: Path, table_dir: Path, frame: pd.DataFrame, voices: tuple[str, ...], snr_db: float,
          rng: np.random.Generator, show: bool, flite: str) -> None:
    (folder / "images").mkdir()
    (folder / "audio").mkdir()
    rows = []
    with progress_bar(show) as bar, tempfile.TemporaryDirectory(prefix="av_shift_") as tmp:
        task = bar.add_task("flite clips", total=len(frame))
        for i, (image, label) in enumerate(zip(frame["image"], frame["label"], strict=True)):
            image_rel, audio_rel = f"images/{i}.png", f"audio/{i}.wav"
            shutil.copyfile(table_dir / str(image), folder / image_rel)
            voice, stretch = str(rng.choice(voices)), float(rng.choice(STRETCHES))
            clip = speak_flite(flite, voice, stretch, int(label), Path(tmp) / "clip.wav")
            sf.write(folder / audio_rel, add_noise(clip, snr_db, rng), SAMPLE_RATE, subtype="PCM_16")
            rows.append({"image": image_rel, "audio": audio_rel, "label": int(label), "voice": voice})
            bar.advance(task)
    pd.DataFrame(rows).to_csv(folder / "test.csv", index=False)


def speak_flite(flite: str, voice: str, stretch: float, digit: int, wav_path: Path) -> np.ndarray:
    """One digit word spoken by flite: float32 mono samples at 16 kHz.

    Raises:
        SetupError: flite failed (its stderr is included).
    """
    cmd = [flite, "-voice", voice, "--setf", f"duration_stretch={stretch}", "-t", DIGIT_WORDS[digit],
           "-o", str(wav_path)]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0 or not wav_path.is_file():
        raise SetupError(f"flite failed on voice {voice!r} (exit {result.returncode}): "
                         f"{result.stderr.strip()}; check that `flite -lv` lists it")
    return read_mono(wav_path)

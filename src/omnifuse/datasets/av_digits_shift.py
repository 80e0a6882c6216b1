"""A shifted AV-Digits test table: the same pictures, the digits spoken by another speech engine.

A model trained on AV-Digits hears only espeak-ng. This table keeps an AV-Digits split's pictures (the same
PNG files) and labels and replaces each clip with the digit spoken by another engine from Debian: ``flite``
(its own voices) or ``festival`` (a diphone voice and an HTS statistical voice: other synthesis methods),
degraded with the same white noise. It is a shift of one modality: the
pictures are in distribution, the voice is not. ``omnifuse evaluate --shift-test`` and the OOD scores of a
model folder are measured on it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from omnifuse.datasets._common import build_atomically, progress_bar
from omnifuse.datasets.av_digits import DIGIT_WORDS, SAMPLE_RATE, add_noise, read_mono
from omnifuse.errors import DataError, OptionError, SetupError

FLITE_VOICES = ("kal", "awb", "rms", "slt")  # `flite -lv`; none of them is an espeak-ng voice
# Debian festvox-kdlpc16k (a diphone voice) and festvox-us-slt-hts (an HTS statistical-parametric voice)
FESTIVAL_VOICES = ("ked_diphone", "cmu_us_slt_arctic_hts")
STRETCHES = (0.8, 1.0, 1.25)  # the engines' duration stretch: faster, normal, slower speech
FORMAT_VERSION = 1
Speak = Callable[[str, str, float, int, Path], np.ndarray]  # (program, voice, stretch, digit, wav) -> clip


def build_av_digits_shift(
    table_dir: Path, out_dir: Path, *, engine: str = "flite", split: str = "test", seed: int = 0,
    progress: bool = True, voices: tuple[str, ...] | None = None,
) -> Path:
    """Writes ``out_dir/test.csv`` (``image``, ``audio``, ``label``, ``voice``): ``split`` of the AV-Digits
    table in ``table_dir`` with its pictures copied and each digit spoken anew by ``engine`` (``flite`` or
    ``festival``; ``voices`` default to ``FLITE_VOICES`` / ``FESTIVAL_VOICES``) at the table's noise level.

    Raises:
        SetupError: the engine is not installed (the message names the Debian packages).
        DataError: ``table_dir`` is not an AV-Digits table (no BUILD.json or no ``<split>.csv``).
        OptionError: an unknown engine, or no voice.
    """
    if engine not in ENGINES:
        raise OptionError(f"engine {engine!r}: choose one of {', '.join(ENGINES)}")
    program_name, packages, default_voices, speak = ENGINES[engine]
    program = shutil.which(program_name)
    if program is None:
        raise SetupError(f"{engine} is not installed, so the shifted table cannot speak its digits; run "
                         f"`sudo apt-get install {packages}` (or `make setup`) and try again")
    voices = default_voices if voices is None else tuple(voices)
    if not voices:
        raise OptionError(f"voices: give at least one {engine} voice")
    table_dir = Path(table_dir).resolve()
    build, csv = table_dir / "BUILD.json", table_dir / f"{split}.csv"
    if not build.is_file() or not csv.is_file():
        raise DataError(f"{table_dir} is not an AV-Digits table with a {split!r} split (BUILD.json and "
                        f"{split}.csv); build one with omnifuse.datasets.build_av_digits first")
    snr_db = float(json.loads(build.read_text(encoding="utf-8"))["snr_db"])
    params = {"builder": "av_digits_shift", "format": FORMAT_VERSION, "table": str(table_dir),
              "engine": engine, "split": split, "seed": seed, "voices": list(voices), "snr_db": snr_db}
    frame = pd.read_csv(csv)

    def fill(folder: Path) -> None:
        _fill(folder, table_dir, frame, voices, snr_db, np.random.default_rng([seed, 7]), progress,
              lambda voice, stretch, digit, wav: speak(program, voice, stretch, digit, wav), engine)

    return build_atomically(out_dir, params, fill, splits=("test",))


def _fill(folder: Path, table_dir: Path, frame: pd.DataFrame, voices: tuple[str, ...], snr_db: float,
          rng: np.random.Generator, show: bool, say: Callable[[str, float, int, Path], np.ndarray],
          engine: str) -> None:
    (folder / "images").mkdir()
    (folder / "audio").mkdir()
    rows = []
    with progress_bar(show) as bar, tempfile.TemporaryDirectory(prefix="av_shift_") as tmp:
        task = bar.add_task(f"{engine} clips", total=len(frame))
        for i, (image, label) in enumerate(zip(frame["image"], frame["label"], strict=True)):
            image_rel, audio_rel = f"images/{i}.png", f"audio/{i}.wav"
            shutil.copyfile(table_dir / str(image), folder / image_rel)
            voice, stretch = str(rng.choice(voices)), float(rng.choice(STRETCHES))
            clip = say(voice, stretch, int(label), Path(tmp) / "clip.wav")
            sf.write(folder / audio_rel, add_noise(clip, snr_db, rng), SAMPLE_RATE, subtype="PCM_16")
            rows.append({"image": image_rel, "audio": audio_rel, "label": int(label), "voice": voice})
            bar.advance(task)
    pd.DataFrame(rows).to_csv(folder / "test.csv", index=False)


def speak_flite(flite: str, voice: str, stretch: float, digit: int, wav_path: Path) -> np.ndarray:
    """One digit word spoken by flite: float32 mono samples at 16 kHz.

    Raises:
        SetupError: flite failed (its stderr is included).
    """
    wav_path.unlink(missing_ok=True)  # a failed run must not leave the last row's clip in place
    cmd = [flite, "-voice", voice, "--setf", f"duration_stretch={stretch}", "-t", DIGIT_WORDS[digit],
           "-o", str(wav_path)]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0 or not wav_path.is_file():
        raise SetupError(f"flite failed on voice {voice!r} (exit {result.returncode}): "
                         f"{result.stderr.strip()}; check that `flite -lv` lists it")
    return read_mono(wav_path)


def speak_festival(text2wave: str, voice: str, stretch: float, digit: int, wav_path: Path) -> np.ndarray:
    """One digit word spoken by festival (``text2wave``): float32 mono samples at 16 kHz.

    Raises:
        SetupError: festival failed, e.g. the voice is not installed (its stderr is included).
    """
    wav_path.unlink(missing_ok=True)  # a failed run must not leave the last row's clip in place
    text = wav_path.with_suffix(".txt")
    text.write_text(DIGIT_WORDS[digit] + "\n", encoding="utf-8")
    cmd = [text2wave, "-eval", f"(voice_{voice})", "-eval", f"(Parameter.set 'Duration_Stretch {stretch})",
           str(text), "-o", str(wav_path)]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0 or not wav_path.is_file() or "SIOD ERROR" in result.stderr:
        raise SetupError(f"festival failed on voice {voice!r} (exit {result.returncode}): "
                         f"{result.stderr.strip()}; install its festvox package (`make setup`)")
    return read_mono(wav_path)


# engine: (program, Debian packages, default voices, speak)
ENGINES: dict[str, tuple[str, str, tuple[str, ...], Speak]] = {
    "flite": ("flite", "flite", FLITE_VOICES, speak_flite),
    "festival": ("text2wave", "festival festvox-kdlpc16k festvox-us-slt-hts", FESTIVAL_VOICES,
                 speak_festival),
}

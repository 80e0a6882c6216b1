"""Tests of the AV-Digits builder (small sizes; needs Debian espeak-ng, skipped without it)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from PIL import Image

from omnifuse.datasets import DATASETS, av_digits, build_av_digits

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
SIZES = {"n_train": 20, "n_valid": 10, "n_test": 10}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed")
    return build_av_digits(tmp_path_factory.mktemp("avd") / "av_digits", progress=False, **SIZES)


def test_registered_by_name() -> None:
    assert DATASETS["av_digits"] is build_av_digits


def test_test_voices_are_held_out() -> None:
    assert set(av_digits.TRAIN_VOICES).isdisjoint(av_digits.TEST_VOICES)
    assert set(av_digits.TRAIN_VOICES).isdisjoint(av_digits.VALID_VOICES)
    assert set(av_digits.VALID_VOICES).isdisjoint(av_digits.TEST_VOICES)
    assert av_digits.TEST_VOICES


@needs_espeak
def test_writes_three_tables_with_expected_columns(built: Path) -> None:
    for split in ("train", "valid", "test"):
        table = pd.read_csv(built / f"{split}.csv")
        assert list(table.columns) == ["image", "audio", "label"]
        assert len(table) == SIZES[f"n_{split}"]
        assert table["label"].between(0, 9).all()
        assert all((built / p).is_file() for p in list(table["image"]) + list(table["audio"]))
        assert table["image"].iloc[0] == f"images/{split}_0.png"
    assert json.loads((built / "BUILD.json").read_text())["n_train"] == 20


@needs_espeak
def test_classes_are_balanced(built: Path) -> None:
    counts = pd.read_csv(built / "train.csv")["label"].value_counts()
    assert len(counts) == 10 and counts.max() - counts.min() <= 1


@needs_espeak
def test_images_are_28x28_grayscale_with_dropped_pixels(built: Path) -> None:
    image = Image.open(built / "images/train_0.png")
    assert image.size == (28, 28) and image.mode == "L"
    pixels = np.asarray(image)
    assert pixels.max() > 0 and (pixels == 0).mean() >= 0.6


@needs_espeak
def test_audio_is_16k_mono_and_not_silent(built: Path) -> None:
    samples, rate = sf.read(built / "audio/test_0.wav", always_2d=True)
    assert rate == 16_000 and samples.shape[1] == 1
    assert sf.info(str(built / "audio/test_0.wav")).subtype == "PCM_16"
    assert samples.shape[0] > 1_600 and np.abs(samples).max() > 0.1


@needs_espeak
def test_second_call_does_not_rebuild(built: Path) -> None:
    before = (built / "train.csv").stat().st_mtime_ns
    assert build_av_digits(built, progress=False, **SIZES) == built
    assert (built / "train.csv").stat().st_mtime_ns == before


@needs_espeak
def test_other_parameters_rebuild_and_leave_no_temporary_folder(tmp_path: Path) -> None:
    out = tmp_path / "avd"
    build_av_digits(out, progress=False, n_train=10, n_valid=0, n_test=0)
    build_av_digits(out, progress=False, n_train=12, n_valid=0, n_test=0)
    assert len(pd.read_csv(out / "train.csv")) == 12
    assert [p.name for p in tmp_path.iterdir()] == ["avd"]


def test_missing_espeak_names_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(av_digits.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="espeak-ng is not installed.*make setup"):
        build_av_digits(tmp_path / "x", progress=False, **SIZES)
    assert not (tmp_path / "x").exists()


def test_too_many_rows_is_a_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="only 1797 images"):
        build_av_digits(tmp_path / "x", n_train=1500, n_valid=200, n_test=200, progress=False)


def test_pixel_drop_out_of_range_is_a_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="pixel_drop=1.5 must be in"):
        build_av_digits(tmp_path / "x", pixel_drop=1.5, progress=False)


def test_refuses_to_overwrite_a_foreign_folder(tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("user data")
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed")
    with pytest.raises(FileExistsError, match="not made by a dataset builder"):
        build_av_digits(tmp_path, progress=False, **SIZES)


def test_add_noise_hits_the_requested_snr() -> None:
    rng = np.random.default_rng(0)
    clip = np.sin(np.linspace(0, 2_000, 16_000)).astype(np.float32)
    noisy = av_digits.add_noise(clip, -6.0, rng)
    signal = clip * (np.dot(noisy, clip) / np.dot(clip, clip))  # the clip's share of the peak-scaled mix
    noise = noisy - signal
    snr = 10 * np.log10(np.mean(signal**2) / np.mean(noise**2))
    assert snr == pytest.approx(-6.0, abs=0.3)


def test_degrade_image_drops_the_requested_fraction() -> None:
    image = np.full((8, 8), 16.0, dtype=np.float32)
    out = av_digits.degrade_image(image, 0.6, np.random.default_rng(0))
    assert out.shape == (28, 28) and out.dtype == np.uint8
    assert (out == 0).mean() == pytest.approx(0.6, abs=0.08)

"""Tests of the shifted AV-Digits table (flite speech); skipped without espeak-ng or flite (make setup
installs both)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from omnifuse.datasets import build_av_digits, build_av_digits_shift
from omnifuse.datasets.av_digits_shift import FLITE_VOICES
from omnifuse.errors import DataError, SetupError

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None or shutil.which("flite") is None,
                                reason="espeak-ng or flite not installed (make setup installs them)")


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("shift")
    table = build_av_digits(root / "av", n_train=10, n_valid=10, n_test=12, progress=False)
    return table, build_av_digits_shift(table, root / "av_flite", progress=False)


def test_same_pictures_and_labels_new_voices(tables: tuple[Path, Path]) -> None:
    table, shifted = tables
    source, out = pd.read_csv(table / "test.csv"), pd.read_csv(shifted / "test.csv")
    assert list(out["label"]) == list(source["label"])
    assert set(out["voice"]) <= set(FLITE_VOICES)
    for before, after in zip(source["image"], out["image"], strict=True):
        assert (table / before).read_bytes() == (shifted / after).read_bytes()
    clip, rate = sf.read(shifted / out["audio"].iloc[0])
    original, _ = sf.read(table / source["audio"].iloc[0])
    assert rate == 16_000 and clip.ndim == 1 and np.abs(clip).max() > 0.1
    assert clip.shape != original.shape or not np.allclose(clip, original)


def test_second_call_reuses_the_build(tables: tuple[Path, Path]) -> None:
    table, shifted = tables
    stamp = (shifted / "test.csv").stat().st_mtime_ns
    assert build_av_digits_shift(table, shifted, progress=False) == shifted
    assert (shifted / "test.csv").stat().st_mtime_ns == stamp


def test_a_folder_that_is_not_a_table_is_named(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="build_av_digits"):
        build_av_digits_shift(tmp_path, tmp_path / "out", progress=False)


def test_missing_flite_names_the_fix(tables: tuple[Path, Path], tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(SetupError, match="apt-get install flite"):
        build_av_digits_shift(tables[0], tmp_path / "out", progress=False)

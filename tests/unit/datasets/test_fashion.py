"""Tests of the Fashion builder on a tiny fake Fashion-MNIST written in idx format."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from omnifuse.datasets import DATASETS, build_fashion, fashion

SIZES = {"n_train": 20, "n_valid": 10, "n_test": 10}


@pytest.fixture(scope="module")
def built(source: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("fashion-out") / "fashion"
    return build_fashion(out, progress=False, source_dir=source, **SIZES)


def test_registered_by_name() -> None:
    assert DATASETS["fashion"] is build_fashion


def test_writes_three_tables_with_class_names(built: Path) -> None:
    for split in ("train", "valid", "test"):
        table = pd.read_csv(built / f"{split}.csv")
        assert list(table.columns) == ["image", "description", "label"]
        assert len(table) == SIZES[f"n_{split}"]
        assert set(table["label"]) <= set(fashion.CLASS_NAMES)
        assert table["description"].str.len().gt(5).all()
        assert all((built / p).is_file() for p in table["image"])
    assert pd.read_csv(built / "train.csv")["label"].value_counts().max() == 2  # balanced


def test_labels_match_the_pictures(built: Path) -> None:
    table = pd.read_csv(built / "test.csv")
    for rel, label in zip(table["image"], table["label"], strict=True):
        pixels = np.asarray(Image.open(built / rel))
        assert pixels.shape == (28, 28)
        assert fashion.CLASS_NAMES[(int(pixels[0, 0]) - 10) // 20] == label


def test_train_and_valid_pictures_are_disjoint(source: Path, tmp_path: Path) -> None:
    out = build_fashion(tmp_path / "f", progress=False, source_dir=source, n_train=30, n_valid=10, n_test=0)
    train, valid = pd.read_csv(out / "train.csv"), pd.read_csv(out / "valid.csv")
    assert len(train) + len(valid) == 40 and set(train["image"]).isdisjoint(valid["image"])


def test_second_call_does_not_rebuild(built: Path, source: Path) -> None:
    before = (built / "train.csv").stat().st_mtime_ns
    assert build_fashion(built, progress=False, source_dir=source, **SIZES) == built
    assert (built / "train.csv").stat().st_mtime_ns == before


def test_missing_dataset_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="make setup.*dataset-fashion-mnist"):
        build_fashion(tmp_path / "out", source_dir=tmp_path / "nowhere", progress=False)
    assert not (tmp_path / "out").exists()


def test_too_many_rows_is_a_value_error(source: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="n_train \\+ n_valid = 50.*only 40 rows"):
        build_fashion(tmp_path / "out", source_dir=source, n_train=40, n_valid=10, n_test=5, progress=False)


def test_corrupt_idx_file_is_a_value_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.gz"
    with gzip.open(path, "wb") as f:
        f.write(b"not an idx file")
    with pytest.raises(ValueError, match="not a gzipped idx file"):
        fashion.read_idx(path)


def test_description_kinds_follow_the_stated_proportions() -> None:
    rng = np.random.default_rng(0)
    samples = [(label, *fashion.make_description(label, rng)) for label in range(10) for _ in range(300)]
    kinds = pd.Series([kind for _, _, kind in samples]).value_counts(normalize=True)
    assert kinds["informative"] == pytest.approx(0.4, abs=0.04)
    assert kinds["uninformative"] == pytest.approx(0.3, abs=0.04)
    assert kinds["look_alike"] == pytest.approx(0.3, abs=0.04)
    for label, text, kind in samples:
        lower = text.lower()
        named = [c for c in fashion.CLASS_NAMES if any(s.lower() in lower for s in fashion.SYNONYMS[c])]
        name = fashion.CLASS_NAMES[label]
        if kind == "informative":
            assert name in named, text
        elif kind == "look_alike":
            assert set(named) & set(fashion.LOOK_ALIKES[name]), text
        else:
            assert not named, text


def test_capitalise_keeps_t_shirt() -> None:
    assert fashion._capitalise("tee and T-shirt") == "Tee and T-shirt"

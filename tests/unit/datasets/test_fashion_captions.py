"""Tests of the Fashion captions builder on the tiny fake Fashion-MNIST of conftest.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from omnifuse.datasets import DATASETS, build_fashion, build_fashion_captions, fashion, fashion_captions
from omnifuse.errors import OptionError, SetupError

SIZES = {"n_train": 20, "n_valid": 10, "n_test": 10}


@pytest.fixture(scope="module")
def built(source: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("captions-out") / "captions"
    return build_fashion_captions(out, progress=False, source_dir=source, **SIZES)


def test_registered_by_name() -> None:
    assert DATASETS["fashion_captions"] is build_fashion_captions


def test_every_class_has_facts() -> None:
    assert set(fashion_captions.FACTS) == set(fashion.CLASS_NAMES)


def test_writes_three_tables_of_image_caption_label(built: Path) -> None:
    for split in ("train", "valid", "test"):
        table = pd.read_csv(built / f"{split}.csv")
        assert list(table.columns) == ["image", "caption", "label"]
        assert len(table) == SIZES[f"n_{split}"]
        assert all((built / p).is_file() for p in table["image"])
    assert pd.read_csv(built / "train.csv")["label"].value_counts().max() == 2  # balanced


def test_captions_name_the_pictured_class(built: Path) -> None:
    table = pd.read_csv(built / "test.csv")
    for rel, caption, label in zip(table["image"], table["caption"], table["label"], strict=True):
        pixels = np.asarray(Image.open(built / rel))
        assert fashion.CLASS_NAMES[(int(pixels[0, 0]) - 10) // 20] == label
        assert fashion_captions.FACTS[label].thing in caption and caption.endswith(".")


def test_the_rows_are_those_of_the_fashion_table(built: Path, source: Path, tmp_path: Path) -> None:
    plain = build_fashion(tmp_path / "f", progress=False, source_dir=source, **SIZES)
    for split in ("train", "test"):
        labels = [list(pd.read_csv(folder / f"{split}.csv")["label"]) for folder in (plain, built)]
        assert labels[0] == labels[1]
    assert (plain / "images/train_3.png").read_bytes() == (built / "images/train_3.png").read_bytes()


def test_same_seed_gives_identical_tables_and_another_seed_differs(
    built: Path, source: Path, tmp_path: Path
) -> None:
    again = build_fashion_captions(tmp_path / "a", progress=False, source_dir=source, **SIZES)
    other = build_fashion_captions(tmp_path / "b", progress=False, source_dir=source, seed=1, **SIZES)
    assert (again / "train.csv").read_bytes() == (built / "train.csv").read_bytes()
    assert (other / "train.csv").read_bytes() != (built / "train.csv").read_bytes()


def test_plain_style_says_a_photo_of(source: Path, tmp_path: Path) -> None:
    out = build_fashion_captions(tmp_path / "p", progress=False, source_dir=source, style="plain", **SIZES)
    table = pd.read_csv(out / "train.csv")
    expected = [f"a photo of {fashion_captions.FACTS[label].thing}." for label in table["label"]]
    assert list(table["caption"]) == expected


def test_attribute_captions_use_every_template_and_the_class_facts() -> None:
    rng = np.random.default_rng(0)
    captions = [fashion_captions.make_caption(3, "attributes", rng) for _ in range(200)]
    facts = fashion_captions.FACTS["Dress"]
    assert len(set(captions)) == len(fashion_captions.ATTRIBUTE_TEMPLATES)
    assert f"{facts.thing} with {facts.detail}." in captions and f"{facts.thing}, {facts.worn}." in captions


def test_unknown_style_is_an_option_error(source: Path, tmp_path: Path) -> None:
    with pytest.raises(OptionError, match="style='fancy' is unknown; choose one of 'plain', 'attributes'"):
        build_fashion_captions(tmp_path / "x", progress=False, source_dir=source, style="fancy")
    assert not (tmp_path / "x").exists()


def test_missing_dataset_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(SetupError, match="make setup.*dataset-fashion-mnist"):
        build_fashion_captions(tmp_path / "out", source_dir=tmp_path / "nowhere", progress=False)
    assert not (tmp_path / "out").exists()

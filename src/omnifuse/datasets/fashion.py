"""Fashion: Fashion-MNIST pictures paired with short seller descriptions of mixed honesty.

About 40% of descriptions name the item's class (or a synonym), 30% say nothing about it, and 30% name a
look-alike class (shirt for T-shirt, sandal for sneaker, ...), so neither the picture nor the text alone is
enough. Reads the Debian ``dataset-fashion-mnist`` idx files (https://github.com/zalandoresearch/fashion-mnist).
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from omnifuse.datasets._common import (
    build_atomically,
    progress_bar,
    split_sizes,
    stratified_order,
    write_csvs,
)
from omnifuse.errors import DataError, OptionError, SetupError

DEFAULT_SOURCE = Path("/usr/share/datasets/fashion-mnist")
CLASS_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
SYNONYMS: dict[str, tuple[str, ...]] = {
    "T-shirt/top": ("T-shirt", "tee", "tank top", "crop top"),
    "Trouser": ("trousers", "pants", "jeans", "slacks"),
    "Pullover": ("pullover", "sweater", "jumper"),
    "Dress": ("dress", "sundress", "gown"),
    "Coat": ("coat", "jacket", "parka"),
    "Sandal": ("sandals", "flip-flops", "slides"),
    "Shirt": ("shirt", "blouse", "button-down"),
    "Sneaker": ("sneakers", "trainers", "running shoes"),
    "Bag": ("bag", "handbag", "tote", "purse"),
    "Ankle boot": ("ankle boots", "booties", "Chelsea boots"),
}
# Classes whose pictures are easily confused with each other.
LOOK_ALIKES: dict[str, tuple[str, ...]] = {
    "T-shirt/top": ("Shirt", "Pullover"),
    "Trouser": ("Dress",),
    "Pullover": ("Coat", "Shirt", "T-shirt/top"),
    "Dress": ("Coat", "Shirt"),
    "Coat": ("Pullover", "Shirt"),
    "Sandal": ("Sneaker", "Ankle boot"),
    "Shirt": ("T-shirt/top", "Pullover", "Coat"),
    "Sneaker": ("Sandal", "Ankle boot"),
    "Bag": ("Shirt", "T-shirt/top"),
    "Ankle boot": ("Sneaker", "Sandal"),
}
DESCRIPTION_KINDS = ("informative", "uninformative", "look_alike")
KIND_PROBS = (0.4, 0.3, 0.3)
ADJECTIVES = ("lovely", "classic", "cosy", "stylish", "barely worn", "vintage", "comfy", "brand-new", "smart")
COLOURS = ("black", "white", "navy", "grey", "red", "beige", "olive", "pink", "mustard", "blue")
MATERIALS = ("cotton", "linen", "wool", "polyester", "recycled fabric", "a soft blend", "organic material")
NAMED_TEMPLATES = (
    "{adj} {colour} {item}, {material}.",
    "Selling my {colour} {item}, {adj} condition.",
    "{item} in {colour}, made of {material}. Worn twice.",
    "{adj} {item}, {colour}, fits true to size.",
    "Gorgeous {colour} {item} - {material}, {adj}.",
)
VAGUE_TEMPLATES = (
    "Great item, fast shipping!",
    "{adj} piece, {colour}, from a smoke-free home.",
    "Bought last season, selling because I moved.",
    "Price is firm. Pick-up or post.",
    "{colour} and {adj}. Message me with questions!",
    "Good condition, {material}. Bundle discounts available.",
)
FORMAT_VERSION = 1
_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


def build_fashion(
    out_dir: Path,
    *,
    n_train: int = 2000,
    n_valid: int = 400,
    n_test: int = 1000,
    seed: int = 0,
    progress: bool = True,
    source_dir: Path = DEFAULT_SOURCE,
) -> Path:
    """Build the Fashion table (picture + seller description, class name label) in ``out_dir``.

    Writes ``images/<split>_<i>.png`` (28x28 grayscale), ``train.csv`` / ``valid.csv`` / ``test.csv`` with
    columns ``image`` (relative path), ``description``, ``label`` (class name, e.g. ``"Ankle boot"``) and a
    ``BUILD.json`` marker. Train and valid come from Fashion-MNIST's training file (disjoint rows), test from
    its t10k file. A second call with the same arguments returns at once.

    Args:
        out_dir: folder to create (built in a temporary sibling, then renamed).
        n_train, n_valid, n_test: rows per split.
        seed: seed of every random choice.
        progress: show a rich progress bar.
        source_dir: folder holding the four Fashion-MNIST ``*-ubyte.gz`` files.

    Returns:
        ``out_dir``, absolute.

    Raises:
        SetupError: the Fashion-MNIST files are missing.
        OptionError: a split asks for more rows than the source has. DataError: a file is not in idx format.
    """
    sizes = split_sizes(n_train, n_valid, n_test)
    source_dir = Path(source_dir)
    check_source(source_dir)
    params: dict[str, Any] = {
        "builder": "fashion",
        "format": FORMAT_VERSION,
        **{f"n_{k}": v for k, v in sizes.items()},
        "seed": seed,
        "source_dir": str(source_dir.absolute()),
    }

    def fill(folder: Path) -> None:
        _fill(folder, source_dir, sizes, seed, progress)

    return build_atomically(out_dir, params, fill)


def check_source(source_dir: Path) -> None:
    """Check that the four Fashion-MNIST files are in ``source_dir``.

    Raises:
        SetupError: a file is missing; the message names the install command.
    """
    missing = [name for pair in _FILES.values() for name in pair if not (source_dir / name).is_file()]
    if missing:
        raise SetupError(
            f"Fashion-MNIST files {missing} not found in '{source_dir}'; run `make setup` (or "
            "`sudo apt-get install dataset-fashion-mnist`), or pass source_dir= the folder that holds them"
        )


def read_idx(path: Path) -> np.ndarray:
    """Read a gzipped idx file (the MNIST format) of unsigned bytes into an array of its shape.

    Raises:
        DataError: the file is not a gzipped idx file of unsigned bytes.
    """
    with gzip.open(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[:2] != b"\x00\x00" or data[2] != 0x08:
        raise DataError(f"'{path}' is not a gzipped idx file of unsigned bytes; re-download or reinstall it")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * k : 8 + 4 * k], "big") for k in range(ndim))
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise DataError(f"'{path}' holds {body.size} values but its header says shape {shape}; reinstall it")
    return body.reshape(shape)


def _load_split_source(source_dir: Path, part: str) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(images (N, 28, 28) uint8, labels (N,))`` of the ``train`` or ``test`` source file."""
    images_file, labels_file = _FILES[part]
    images, labels = read_idx(source_dir / images_file), read_idx(source_dir / labels_file)
    if len(images) != len(labels):
        raise DataError(
            f"'{source_dir / images_file}' has {len(images)} images but '{labels_file}' has {len(labels)} "
            "labels; reinstall the dataset"
        )
    return images, labels.astype(np.int64)


def pick_rows(
    source_dir: Path, sizes: dict[str, int], rng: np.random.Generator
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Choose class-balanced rows per split: train and valid disjoint from the train file, test from t10k."""
    train_images, train_labels = _load_split_source(source_dir, "train")
    test_images, test_labels = _load_split_source(source_dir, "test")
    _check_size("n_train + n_valid", sizes["train"] + sizes["valid"], len(train_labels), source_dir)
    _check_size("n_test", sizes["test"], len(test_labels), source_dir)
    order = stratified_order(train_labels, rng)
    train_idx = rng.permutation(order[: sizes["train"]])
    valid_idx = rng.permutation(order[sizes["train"] : sizes["train"] + sizes["valid"]])
    test_idx = rng.permutation(stratified_order(test_labels, rng)[: sizes["test"]])
    return {
        "train": (train_images[train_idx], train_labels[train_idx]),
        "valid": (train_images[valid_idx], train_labels[valid_idx]),
        "test": (test_images[test_idx], test_labels[test_idx]),
    }


def _check_size(what: str, wanted: int, available: int, source_dir: Path) -> None:
    """Reject a split that asks for more rows than the source file holds."""
    if wanted > available:
        raise OptionError(
            f"{what} = {wanted}, but the Fashion-MNIST files in '{source_dir}' hold only {available} rows "
            "for it; lower the split sizes"
        )


def _fill(folder: Path, source_dir: Path, sizes: dict[str, int], seed: int, show: bool) -> None:
    """Write the pictures, their seller descriptions and the three CSVs into ``folder``."""

    def describe(label: int, rng: np.random.Generator) -> dict[str, str]:
        return {"description": make_description(label, rng)[0]}

    fill_tables(folder, source_dir, sizes, seed, show, describe, ("description",), "Fashion rows")


TextOf = Callable[[int, np.random.Generator], dict[str, str]]


def fill_tables(
    folder: Path,
    source_dir: Path,
    sizes: dict[str, int],
    seed: int,
    show: bool,
    text_of: TextOf,
    text_columns: tuple[str, ...],
    title: str,
) -> None:
    """Write ``images/<split>_<i>.png`` of class-balanced rows and CSVs of ``image``, the text, ``label``.

    Args:
        folder: the dataset folder being built. source_dir, sizes, seed: as in :func:`build_fashion`.
        show: draw a progress bar titled ``title``.
        text_of: ``(label index, rng) -> {column: text}`` for the ``text_columns`` of one row; every call
            draws from one generator seeded by ``seed``.
    """
    (folder / "images").mkdir()
    picked = pick_rows(source_dir, sizes, np.random.default_rng([seed, 0]))
    text_rng = np.random.default_rng([seed, 1])
    tables = {}
    with progress_bar(show) as bar:
        task = bar.add_task(title, total=sum(sizes.values()))
        for split, (images, labels) in picked.items():
            rows = []
            for i, (image, label) in enumerate(zip(images, labels, strict=True)):
                rel = f"images/{split}_{i}.png"
                Image.fromarray(image).save(folder / rel)
                rows.append({"image": rel, **text_of(int(label), text_rng), "label": CLASS_NAMES[label]})
                bar.advance(task)
            tables[split] = pd.DataFrame(rows, columns=["image", *text_columns, "label"])
    write_csvs(folder, tables)


def make_description(label: int, rng: np.random.Generator) -> tuple[str, str]:
    """Write a seller description for an item of class ``label``.

    Returns:
        ``(text, kind)`` where kind is ``"informative"`` (names the class or a synonym), ``"uninformative"``
        (names no class) or ``"look_alike"`` (names a class whose pictures look like this one).
    """
    kind = str(rng.choice(DESCRIPTION_KINDS, p=KIND_PROBS))
    fill = {
        "adj": str(rng.choice(ADJECTIVES)),
        "colour": str(rng.choice(COLOURS)),
        "material": str(rng.choice(MATERIALS)),
    }
    if kind == "uninformative":
        return _capitalise(str(rng.choice(VAGUE_TEMPLATES)).format(**fill)), kind
    name = CLASS_NAMES[label]
    if kind == "look_alike":
        name = str(rng.choice(LOOK_ALIKES[name]))
    item = str(rng.choice(SYNONYMS[name]))
    return _capitalise(str(rng.choice(NAMED_TEMPLATES)).format(item=item, **fill)), kind


def _capitalise(text: str) -> str:
    """Upper-case the first letter only (``str.capitalize`` would lower-case 'T-shirt')."""
    return text[:1].upper() + text[1:]

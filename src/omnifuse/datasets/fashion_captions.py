"""Fashion captions: Fashion-MNIST pictures with short captions made from their class's attributes.

Each caption names the item and, in the ``attributes`` style, where it is worn, what kind of item it is and
one visible detail (sleeves, legs, straps, laces, ...), e.g. "footwear: an ankle boot with a shaft that
covers the ankle, worn on the foot." The facts come from the class alone, one template per row chosen at
random, so a caption is right about the picture whenever the class is. Reads the Debian
``dataset-fashion-mnist`` idx files, as :mod:`omnifuse.datasets.fashion` does.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from omnifuse.datasets._common import build_atomically, split_sizes
from omnifuse.datasets.fashion import CLASS_NAMES, DEFAULT_SOURCE, check_source, fill_tables
from omnifuse.errors import OptionError


@dataclass(frozen=True)
class ItemFacts:
    """What a caption may say about a Fashion-MNIST class.

    Attributes:
        thing: the item with its article ("a coat", "a pair of trousers").
        kind: the kind of item ("an upper-body garment", "footwear").
        worn: where or how it is worn ("worn on the upper body", "carried by hand or on the shoulder").
        detail: a visible feature ("long sleeves", "laces").
    """

    thing: str
    kind: str
    worn: str
    detail: str


FACTS: dict[str, ItemFacts] = {
    "T-shirt/top": ItemFacts("a T-shirt", "an upper-body garment", "worn on the upper body", "short sleeves"),
    "Trouser": ItemFacts("a pair of trousers", "a lower-body garment", "worn on the legs", "two long legs"),
    "Pullover": ItemFacts("a pullover", "an upper-body garment", "worn on the upper body", "long sleeves"),
    "Dress": ItemFacts("a dress", "a one-piece garment", "worn on the whole body", "a top and skirt in one"),
    "Coat": ItemFacts("a coat", "outerwear", "worn over the upper body", "long sleeves and a front opening"),
    "Sandal": ItemFacts("a sandal", "footwear", "worn on the foot", "open straps"),
    "Shirt": ItemFacts("a shirt", "an upper-body garment", "worn on the upper body", "a collar and buttons"),
    "Sneaker": ItemFacts("a sneaker", "footwear", "worn on the foot", "a low top and laces"),
    "Bag": ItemFacts("a bag", "an accessory", "carried by hand or on the shoulder", "a handle"),
    "Ankle boot": ItemFacts("an ankle boot", "footwear", "worn on the foot", "a shaft that covers the ankle"),
}
PLAIN_TEMPLATES = ("a photo of {thing}.",)
ATTRIBUTE_TEMPLATES = (
    "a photo of {thing}.",
    "{thing}, {worn}.",
    "{thing} with {detail}.",
    "{kind}: {thing} with {detail}.",
)
STYLES = {"plain": PLAIN_TEMPLATES, "attributes": ATTRIBUTE_TEMPLATES}
FORMAT_VERSION = 1


def make_caption(label: int, style: str, rng: np.random.Generator) -> str:
    """A caption of an item of class ``label`` (index into ``CLASS_NAMES``) in ``style``.

    Raises:
        OptionError: ``style`` is not one of ``STYLES``.
    """
    _check_style(style)
    templates = STYLES[style]
    template = templates[int(rng.integers(len(templates)))]
    return template.format(**asdict(FACTS[CLASS_NAMES[label]]))


def _check_style(style: str) -> None:
    """Raise an OptionError listing the styles when ``style`` is not one of them."""
    if style not in STYLES:
        raise OptionError(f"style={style!r} is unknown; choose one of {', '.join(map(repr, STYLES))}")


def build_fashion_captions(
    out_dir: Path,
    *,
    n_train: int = 2000,
    n_valid: int = 400,
    n_test: int = 1000,
    seed: int = 0,
    progress: bool = True,
    style: str = "attributes",
    source_dir: Path = DEFAULT_SOURCE,
) -> Path:
    """Build the Fashion captions table (picture, caption, class name) in ``out_dir``.

    Writes ``images/<split>_<i>.png`` (28x28 grayscale), ``train.csv`` / ``valid.csv`` / ``test.csv`` with
    the columns ``image`` (relative path), ``caption`` and ``label`` (class name, e.g. ``"Ankle boot"``) and a
    ``BUILD.json`` marker. The rows are those :func:`~omnifuse.datasets.fashion.build_fashion` picks with the
    same seed and sizes (train and valid from Fashion-MNIST's training file, test from its t10k file).

    Args:
        out_dir: folder to create (built in a temporary sibling, then renamed).
        n_train, n_valid, n_test: rows per split, class-balanced.
        seed: seed of every random choice; the same seed gives byte-identical tables.
        progress: show a rich progress bar.
        style: ``"attributes"`` (one of ``ATTRIBUTE_TEMPLATES`` per row, drawn with ``seed``) or ``"plain"``
            (always "a photo of a coat.").
        source_dir: folder holding the four Fashion-MNIST ``*-ubyte.gz`` files.

    Returns:
        ``out_dir``, absolute.

    Raises:
        SetupError: the Fashion-MNIST files are missing. OptionError: an unknown style, or a split asks for
        more rows than the source has. DataError: a file is not in idx format.
    """
    sizes = split_sizes(n_train, n_valid, n_test)
    _check_style(style)
    source_dir = Path(source_dir)
    check_source(source_dir)
    params: dict[str, Any] = {
        "builder": "fashion_captions",
        "format": FORMAT_VERSION,
        **{f"n_{k}": v for k, v in sizes.items()},
        "seed": seed,
        "style": style,
        "source_dir": str(source_dir.absolute()),
    }

    def fill(folder: Path) -> None:
        _fill(folder, source_dir, sizes, seed, style, progress)

    return build_atomically(out_dir, params, fill)


def _fill(folder: Path, source_dir: Path, sizes: dict[str, int], seed: int, style: str, show: bool) -> None:
    """Write the pictures, their captions and the three CSVs into ``folder``."""

    def caption(label: int, rng: np.random.Generator) -> dict[str, str]:
        return {"caption": make_caption(label, style, rng)}

    fill_tables(folder, source_dir, sizes, seed, show, caption, ("caption",), "Fashion caption rows")

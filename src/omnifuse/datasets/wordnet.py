"""WordNet glosses: a real text topic table, ``gloss -> lexicographer file`` (noun.animal, noun.food, ...).

Every WordNet synset has a gloss (its dictionary definition) and belongs to one of 45 lexicographer files,
the coarse semantic field its lexicographers filed it under. Predicting the field from the definition is a
genuine topic classification task: some fields are easy from a few words ("any of various ... plants"),
others overlap (an act, a cognition and a communication are often defined alike). The synset's own lemma
words are removed from its gloss (a gloss of *dog* that says "dog" would be too easy), and the quoted usage
examples are dropped (they repeat the lemma). Reads the Debian package ``wordnet-base``
(``/usr/share/wordnet/data.noun`` ...): WordNet 3.0, Copyright 2006 by Princeton University, under the
WordNet licence (free use, copy, modify and distribute, with the copyright notice kept).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from omnifuse.datasets._common import build_atomically, split_sizes, stratified_order, write_csvs
from omnifuse.errors import DataError, OptionError, SetupError

DEFAULT_SOURCE = Path("/usr/share/wordnet")
# The lexicographer files by number (WordNet's lexnames(5WN)); a data line's second field is this number.
LEXNAMES = (
    "adj.all", "adj.pert", "adv.all", "noun.Tops", "noun.act", "noun.animal", "noun.artifact",
    "noun.attribute", "noun.body", "noun.cognition", "noun.communication", "noun.event", "noun.feeling",
    "noun.food", "noun.group", "noun.location", "noun.motive", "noun.object", "noun.person",
    "noun.phenomenon", "noun.plant", "noun.possession", "noun.process", "noun.quantity", "noun.relation",
    "noun.shape", "noun.state", "noun.substance", "noun.time", "verb.body", "verb.change", "verb.cognition",
    "verb.communication", "verb.competition", "verb.consumption", "verb.contact", "verb.creation",
    "verb.emotion", "verb.motion", "verb.perception", "verb.possession", "verb.social", "verb.stative",
    "verb.weather", "adj.ppl",
)
# Ten noun fields with over 2,000 synsets each: four easy ones (animal, plant, food, body), and acts,
# cognitions and communications, which are often defined alike.
DEFAULT_CLASSES = (
    "noun.act", "noun.animal", "noun.artifact", "noun.body", "noun.cognition", "noun.communication",
    "noun.food", "noun.location", "noun.person", "noun.plant",
)
DATA_FILES = ("data.noun", "data.verb", "data.adj", "data.adv")
MIN_WORDS = 3  # glosses with fewer words left (after the lemmas are removed) are dropped
INSTALL_HINT = "run `make setup` (or `sudo apt-get install wordnet-base`), or pass source_dir="
FORMAT_VERSION = 1
_WORD = re.compile(r"[A-Za-z0-9]+(?:['-][A-Za-z0-9]+)*")
_QUOTED = re.compile(r'"[^"]*"')


@dataclass(frozen=True)
class Synset:
    """One synset of a WordNet data file: its offset, lexicographer file, lemma words and gloss."""

    offset: str
    lexname: str
    lemmas: tuple[str, ...]
    gloss: str


def build_wordnet(
    out_dir: Path,
    *,
    n_train: int = 2000,
    n_valid: int = 500,
    n_test: int = 1000,
    seed: int = 0,
    progress: bool = True,
    classes: Sequence[str] = DEFAULT_CLASSES,
    source_dir: Path = DEFAULT_SOURCE,
) -> Path:
    """Build the WordNet gloss table (``gloss``, ``label`` = lexicographer file) in ``out_dir``.

    Writes ``train.csv`` / ``valid.csv`` / ``test.csv`` (disjoint synsets, class-balanced, drawn with
    ``seed``) and a ``BUILD.json`` marker. A second call with the same arguments returns at once.

    Args:
        out_dir: folder to create (built in a temporary sibling, then renamed).
        n_train, n_valid, n_test: rows per split.
        seed: seed of the sample and of the row order.
        progress: unused (the build takes about a second); accepted like the other builders.
        classes: the lexicographer files to keep (names from :data:`LEXNAMES`), one class each.
        source_dir: folder holding WordNet's ``data.noun`` / ``data.verb`` / ... files.

    Returns:
        ``out_dir``, absolute.

    Raises:
        SetupError: no WordNet data file in ``source_dir`` (``apt-get install wordnet-base``).
        OptionError: an unknown class, fewer than two classes, or more rows asked than the classes hold.
    """
    sizes = split_sizes(n_train, n_valid, n_test)
    source_dir = Path(source_dir)
    classes = _check_classes(classes)
    files = _data_files(source_dir, classes)
    params: dict[str, Any] = {
        "builder": "wordnet",
        "format": FORMAT_VERSION,
        **{f"n_{k}": v for k, v in sizes.items()},
        "seed": seed,
        "classes": list(classes),
        "source_dir": str(source_dir.absolute()),
    }

    def fill(folder: Path) -> None:
        rows = gloss_rows(s for f in files for s in read_synsets(f) if s.lexname in classes)
        write_csvs(folder, split_rows(rows, classes, sizes, seed, source_dir))

    return build_atomically(out_dir, params, fill)


def _check_classes(classes: Sequence[str]) -> tuple[str, ...]:
    """The classes as a sorted tuple, each a known lexicographer file name."""
    unknown = [c for c in classes if c not in LEXNAMES]
    if unknown:
        raise OptionError(f"classes {unknown} are not WordNet lexicographer files; choose from "
                         f"{', '.join(LEXNAMES)}")
    if len(set(classes)) < 2:
        raise OptionError(f"classes={list(classes)}: a classification table needs two or more distinct "
                         "classes")
    return tuple(sorted(set(classes)))


def _data_files(source_dir: Path, classes: Sequence[str]) -> list[Path]:
    """The data files holding the classes' parts of speech (data.noun for noun.*, ...)."""
    wanted = {f"data.{c.split('.')[0]}" for c in classes}
    files = [source_dir / name for name in DATA_FILES if name in wanted]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise SetupError(f"WordNet data files {missing} not found; {INSTALL_HINT}the folder that "
                           "holds them")
    return files


def read_synsets(path: Path) -> Iterator[Synset]:
    """The synsets of a WordNet ``data.*`` file (its licence header lines start with two spaces).

    A data line is ``offset lex_filenum ss_type w_cnt word lex_id [word lex_id ...] p_cnt ... | gloss``,
    with ``w_cnt`` in hexadecimal (wndb(5WN)).

    Raises:
        DataError: a line is not in that format (the message names the file and line).
    """
    with open(path, encoding="utf-8", errors="replace") as lines:
        for number, line in enumerate(lines, start=1):
            if line.startswith("  ") or not line.strip():
                continue
            try:
                yield _parse_line(line)
            except (ValueError, IndexError) as err:
                raise DataError(f"'{path}' line {number} is not a WordNet data line ({err}); reinstall "
                                 "wordnet-base or point source_dir= at WordNet 3.0's data files") from err


def _parse_line(line: str) -> Synset:
    """One data line -> its Synset."""
    head, _, gloss = line.partition(" | ")
    fields = head.split()
    count = int(fields[3], 16)
    lemmas = tuple(fields[4 + 2 * k] for k in range(count))
    if len(lemmas) != count or not lemmas:
        raise ValueError(f"expected {count} lemmas")
    return Synset(fields[0], LEXNAMES[int(fields[1])], lemmas, gloss.strip())


def clean_gloss(gloss: str, lemmas: Sequence[str]) -> str:
    """The gloss's definition with its quoted examples dropped and the lemmas' words removed.

    Lemma words are matched case-insensitively as whole words, with an optional plural ``s`` / ``es``
    (``"dog"`` removes "dog" and "dogs"); English stop words in a lemma ("of", "the") stay, and an
    adjective marker such as ``(a)`` after a lemma is ignored.
    """
    text = _QUOTED.sub(" ", gloss)
    words = {w.lower() for lemma in lemmas for w in _WORD.findall(re.sub(r"\(.*\)$", "", lemma))}
    words -= ENGLISH_STOP_WORDS  # "of" in "City_of_Brotherly_Love" says nothing about the class
    text = _WORD.sub(lambda m: " " if _is_lemma_word(m.group().lower(), words) else m.group(), text)
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r"\s+([,;:.)])", r"\1", text)
    return re.sub(r"([;,])(?:\s*[;,])+", r"\1", text).strip(" ;,:")


def _is_lemma_word(word: str, lemma_words: set[str]) -> bool:
    """Whether ``word`` (lower case) is one of ``lemma_words`` or its plural in -s / -es."""
    plurals = (word[: -len(end)] for end in ("s", "es") if word.endswith(end))
    return word in lemma_words or any(stem in lemma_words for stem in plurals)


def gloss_rows(synsets: Iterator[Synset]) -> pd.DataFrame:
    """A frame of ``gloss`` (cleaned), ``label`` (lexicographer file) and ``offset``, one row per synset.

    Glosses with fewer than :data:`MIN_WORDS` words left, and glosses shared by two synsets (a copy would
    let a test row be seen in training), are dropped.
    """
    records = [
        {"gloss": clean_gloss(s.gloss, s.lemmas), "label": s.lexname, "offset": s.offset} for s in synsets
    ]
    frame = pd.DataFrame(records, columns=["gloss", "label", "offset"])
    frame = frame[frame["gloss"].map(lambda g: len(_WORD.findall(g)) >= MIN_WORDS)]
    return frame[~frame["gloss"].str.lower().duplicated(keep=False)].reset_index(drop=True)


def split_rows(
    rows: pd.DataFrame, classes: Sequence[str], sizes: dict[str, int], seed: int, source_dir: Path
) -> dict[str, pd.DataFrame]:
    """Disjoint class-balanced train / valid / test tables (``gloss``, ``label``) drawn with ``seed``.

    Raises:
        OptionError: the classes hold fewer usable glosses than the splits ask for.
    """
    rows = rows[rows["label"].isin(classes)].sort_values(["label", "offset"]).reset_index(drop=True)
    wanted = sum(sizes.values())
    per_class = rows["label"].value_counts()
    smallest = int(per_class.min()) if len(per_class) == len(classes) else 0
    if smallest * len(classes) < wanted:
        raise OptionError(
            f"the splits ask for {wanted} rows, {wanted / len(classes):.0f} per class, but the smallest "
            f"class in '{source_dir}' holds {smallest} usable glosses ({dict(per_class)}); lower the "
            "split sizes or choose larger classes"
        )
    rng = np.random.default_rng(seed)
    order = stratified_order(rows["label"].to_numpy(), rng)
    tables, start = {}, 0
    for split, n in sizes.items():
        picked = rng.permutation(order[start : start + n])
        tables[split] = rows.iloc[picked][["gloss", "label"]].reset_index(drop=True)
        start += n
    return tables

"""Tests of the WordNet gloss builder on a tiny data.noun / data.verb written in WordNet's format."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from omnifuse.data.leaks import find_column_problems
from omnifuse.datasets import DATASETS, build_wordnet, wordnet

LICENCE = "  1 This software and database is being provided to you, the LICENSEE, by\n"
CLASSES = ("noun.animal", "noun.food", "noun.plant")
SIZES = {"n_train": 6, "n_valid": 3, "n_test": 3}


def _line(offset: int, lexnum: int, pos: str, lemmas: list[str], gloss: str) -> str:
    """One data line: offset lex_filenum ss_type w_cnt (hex) word lex_id ... p_cnt | gloss."""
    words = " ".join(f"{w} 0" for w in lemmas)
    return f"{offset:08d} {lexnum:02d} {pos} {len(lemmas):02x} {words} 000 | {gloss}  \n"


def _write_source(folder: Path) -> Path:
    """Five synsets per class (animal 05, food 13, plant 20), one too short, one duplicate, one verb."""
    lines = [LICENCE]
    for k in range(5):
        lines.append(_line(100 + k, 5, "n", [f"beast{k}", "wild_beast"],
                           f'a four-legged wild beast {k} of the forest; "the beast{k} growled"'))
        lines.append(_line(200 + k, 13, "n", [f"dish{k}"], f"a dish{k} cooked with rice and spices no {k}"))
        lines.append(_line(300 + k, 20, "n", [f"herb{k}", "Herbs"], f"any of some herbs of genus Herba {k}"))
    lines.append(_line(400, 5, "n", ["gnu"], "a gnu"))  # too short once 'gnu' is gone
    lines += [_line(500 + k, 13, "n", [f"copy{k}"], "a shared gloss of two synsets") for k in range(2)]
    (folder / "data.noun").write_text("".join(lines))
    (folder / "data.verb").write_text(LICENCE + _line(600, 38, "v", ["run"], "move fast by using legs"))
    return folder


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write_source(tmp_path_factory.mktemp("wordnet-src"))


@pytest.fixture(scope="module")
def built(source: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wordnet-out") / "wordnet"
    return build_wordnet(out, source_dir=source, classes=CLASSES, progress=False, **SIZES)


def test_registered_by_name() -> None:
    assert DATASETS["wordnet"] is build_wordnet


def test_reads_offsets_lexnames_and_lemmas(source: Path) -> None:
    synsets = list(wordnet.read_synsets(source / "data.noun"))
    assert len(synsets) == 18  # the licence line is skipped
    first = synsets[0]
    assert (first.offset, first.lexname) == ("00000100", "noun.animal")
    assert first.lemmas == ("beast0", "wild_beast")
    assert first.gloss.startswith("a four-legged wild beast 0")
    assert list(wordnet.read_synsets(source / "data.verb"))[0].lexname == "verb.motion"


def test_clean_gloss_drops_lemmas_plurals_and_examples() -> None:
    gloss = 'a large dog; "the dogs barked"; kept by Dogs and Wolves; hot-dog stays'
    cleaned = wordnet.clean_gloss(gloss, ["dog", "wolf", "domestic_dog(a)"])
    assert cleaned == "a large; kept by and Wolves; hot-dog stays"  # 'wolves' is not a plural in -s


def test_clean_gloss_keeps_stop_words_of_lemmas() -> None:
    assert wordnet.clean_gloss("the city of brotherly love", ["City_of_Brotherly_Love"]) == "the of"


def test_writes_balanced_disjoint_splits(built: Path) -> None:
    tables = {s: pd.read_csv(built / f"{s}.csv") for s in ("train", "valid", "test")}
    for split, table in tables.items():
        assert list(table.columns) == ["gloss", "label"]
        assert len(table) == SIZES[f"n_{split}"]
        assert table["label"].value_counts().max() - table["label"].value_counts().min() == 0
    glosses = [set(t["gloss"]) for t in tables.values()]
    assert not (glosses[0] & glosses[1]) and not (glosses[0] & glosses[2]) and not (glosses[1] & glosses[2])
    every = pd.concat(tables.values())
    assert set(every["label"]) == set(CLASSES)
    assert not every["gloss"].str.contains("shared gloss|gnu|growled", case=False).any()
    assert not every["gloss"].str.contains(r"\bbeast|\bdish|\bherbs?\b", case=False).any()


def test_same_seed_same_rows_other_seed_other_rows(built: Path, source: Path, tmp_path: Path) -> None:
    again = build_wordnet(tmp_path / "a", source_dir=source, classes=CLASSES, progress=False, **SIZES)
    other = build_wordnet(tmp_path / "b", source_dir=source, classes=CLASSES, progress=False, seed=1, **SIZES)
    first = pd.read_csv(built / "train.csv")
    assert first.equals(pd.read_csv(again / "train.csv"))
    assert not first.equals(pd.read_csv(other / "train.csv"))


def test_leak_detector_is_silent_on_glosses(built: Path) -> None:
    frame = pd.concat([pd.read_csv(built / f"{s}.csv") for s in ("train", "valid", "test")])
    assert find_column_problems(frame, {"gloss": "text"}, "label", "multiclass") == []


def test_missing_package_names_the_install(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match=r"apt-get install wordnet-base"):
        build_wordnet(tmp_path / "out", source_dir=tmp_path / "nowhere", progress=False)
    assert not (tmp_path / "out").exists()


def test_unknown_class_lists_the_choices(source: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\['noun\.dog'\] are not WordNet lexicographer files; choose from"):
        build_wordnet(tmp_path / "o", source_dir=source, classes=("noun.dog", "noun.food"), progress=False)
    with pytest.raises(ValueError, match="two or more distinct classes"):
        build_wordnet(tmp_path / "o", source_dir=source, classes=("noun.food",), progress=False)


def test_too_many_rows_names_the_smallest_class(source: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"ask for 30 rows, 10 per class.*smallest class.*holds 5 usable"):
        build_wordnet(tmp_path / "o", source_dir=source, classes=CLASSES, progress=False,
                      n_train=20, n_valid=5, n_test=5)


def test_bad_line_names_the_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "data.noun").write_text(LICENCE + "00000100 05 n zz broken | gloss\n")
    with pytest.raises(ValueError, match=r"data.noun' line 2 is not a WordNet data line"):
        list(wordnet.read_synsets(tmp_path / "data.noun"))


# The real package: skipped where `apt-get install wordnet-base` (or `make setup`) has not run.
NO_WORDNET = "Debian wordnet-base is not installed (make setup, or apt-get install wordnet-base)"


@pytest.mark.slow  # reads and cleans all 82k noun synsets: about 30 s on a busy 2-core CPU
@pytest.mark.skipif(not (wordnet.DEFAULT_SOURCE / "data.noun").is_file(), reason=NO_WORDNET)
def test_real_wordnet_table(tmp_path: Path) -> None:
    out = build_wordnet(tmp_path / "wn", n_train=200, n_valid=50, n_test=50, progress=False)
    train = pd.read_csv(out / "train.csv")
    assert train["label"].value_counts().to_dict() == {c: 20 for c in wordnet.DEFAULT_CLASSES}
    assert train["gloss"].str.split().str.len().ge(wordnet.MIN_WORDS).all()
    assert find_column_problems(train, {"gloss": "text"}, "label", "multiclass") == []

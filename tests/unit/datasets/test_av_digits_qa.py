"""Tests of the AV-Digits QA builder (tiny sizes; the builds need Debian espeak-ng, skipped without it)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from omnifuse.datasets import DATASETS, av_digits, av_digits_qa, build_av_digits_qa
from omnifuse.errors import OptionError, SetupError

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
SIZES = {"n_train": 20, "n_valid": 8, "n_test": 8}
SPLITS = ("train", "valid", "test")
VOICES = {"train": av_digits.TRAIN_VOICES, "valid": av_digits.VALID_VOICES, "test": av_digits.TEST_VOICES}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed")
    return build_av_digits_qa(tmp_path_factory.mktemp("qa") / "qa", progress=False, **SIZES)


@pytest.fixture(scope="module")
def labels() -> np.ndarray:
    return av_digits.load_digit_images()[1]


def _tables(folder: Path) -> dict[str, pd.DataFrame]:
    return {split: pd.read_csv(folder / f"{split}.csv", dtype={"answer": str}) for split in SPLITS}


def _plan(labels: np.ndarray, n: int, share: float, types: tuple[str, ...] = av_digits_qa.QUESTION_TYPES,
          seed: int = 0) -> dict[str, list[av_digits_qa.QARow]]:
    sizes = {"train": n, "valid": n // 4, "test": n // 2}
    return av_digits_qa.plan_qa(labels, sizes, seed, share, types, VOICES)


def test_registered_by_name() -> None:
    assert DATASETS["av_digits_qa"] is build_av_digits_qa


@needs_espeak
def test_writes_tables_files_and_conversations(built: Path) -> None:
    for split, table in _tables(built).items():
        assert list(table.columns) == list(av_digits_qa.COLUMNS)
        assert len(table) == SIZES[f"n_{split}"]
        assert all((built / p).is_file() for p in list(table["image"]) + list(table["audio"]))
        first = (table["image"].iloc[0], table["audio"].iloc[0])
        assert first == (f"img/{split}_0.png", f"audio/{split}_0.wav")
        assert (built / f"{split}_conversations.jsonl").is_file()
    assert json.loads((built / "BUILD.json").read_text())["builder"] == "av_digits_qa"


@needs_espeak
def test_question_types_are_balanced(built: Path) -> None:
    for table in _tables(built).values():
        counts = table["question_type"].value_counts().reindex(av_digits_qa.QUESTION_TYPES, fill_value=0)
        assert counts.max() - counts.min() <= 1


@needs_espeak
def test_answers_follow_the_written_and_spoken_digits(built: Path) -> None:
    for table in _tables(built).values():
        for row in table.itertuples():
            w, s = int(row.written_digit), int(row.spoken_digit)
            assert row.question == av_digits_qa.QUESTIONS[row.question_type]
            expected = {
                "written": str(w),
                "spoken": str(s),
                "agree": "yes" if w == s else "no",
                "describe": f"A handwritten {w}; the voice says {av_digits.DIGIT_WORDS[s]}.",
            }[str(row.question_type)]
            assert row.answer == expected


@needs_espeak
def test_the_agree_share_is_honoured_in_every_split(built: Path) -> None:
    for table in _tables(built).values():
        agree = table["written_digit"] == table["spoken_digit"]
        assert agree.sum() == int(np.floor(len(table) * 0.5 + 0.5))
        for qtype in av_digits_qa.QUESTION_TYPES:
            of_type = table["question_type"] == qtype
            assert abs((agree & of_type).sum() - 0.5 * of_type.sum()) <= 1


@needs_espeak
def test_conversations_match_the_csv_rows(built: Path) -> None:
    for split, table in _tables(built).items():
        lines = (built / f"{split}_conversations.jsonl").read_text().splitlines()
        assert len(lines) == len(table)
        for i, (line, row) in enumerate(zip(lines, table.itertuples(), strict=True)):
            record = json.loads(line)
            assert set(record) == {"id", "image", "audio", "conversations"}
            assert (record["id"], record["image"], record["audio"]) == (f"{split}_{i}", row.image, row.audio)
            human, gpt = record["conversations"]
            assert human == {"from": "human", "value": f"<image>\n<audio>\n{row.question}"}
            assert gpt == {"from": "gpt", "value": row.answer}


@needs_espeak
def test_same_seed_gives_identical_files_and_another_seed_differs(built: Path, tmp_path: Path) -> None:
    again = build_av_digits_qa(tmp_path / "again", progress=False, **SIZES)
    other = build_av_digits_qa(tmp_path / "other", progress=False, seed=1, **SIZES)
    for name in ("train.csv", "test.csv", "train_conversations.jsonl", "img/train_3.png", "audio/test_2.wav"):
        assert (again / name).read_bytes() == (built / name).read_bytes(), name
    assert (other / "train.csv").read_bytes() != (built / "train.csv").read_bytes()


@needs_espeak
def test_second_call_does_not_rebuild(built: Path) -> None:
    before = (built / "train.csv").stat().st_mtime_ns
    assert build_av_digits_qa(built, progress=False, **SIZES) == built
    assert (built / "train.csv").stat().st_mtime_ns == before


def test_test_voices_are_never_heard_in_training(labels: np.ndarray) -> None:
    plans = _plan(labels, 200, 0.5)
    heard = {split: {row.clip[0] for row in rows} for split, rows in plans.items()}
    assert heard["test"] and heard["test"].isdisjoint(heard["train"] | heard["valid"])
    assert heard["valid"].isdisjoint(heard["train"])
    assert heard["train"] <= set(av_digits.TRAIN_VOICES)


def test_plan_speaks_the_spoken_digit_and_shows_the_written_one(labels: np.ndarray) -> None:
    plans = _plan(labels, 200, 0.3)
    sources = [row.source for rows in plans.values() for row in rows]
    assert len(sources) == len(set(sources))  # no picture in two rows, nor in two splits
    for row in (row for rows in plans.values() for row in rows):
        assert row.clip[3] == row.spoken and labels[row.source] == row.written


@pytest.mark.parametrize("share", [0.0, 0.25, 0.5, 1.0])
def test_agree_share_per_split_and_per_question_type(labels: np.ndarray, share: float) -> None:
    for rows in _plan(labels, 400, share).values():
        agree = [row.written == row.spoken for row in rows]
        assert sum(agree) == int(np.floor(len(rows) * share + 0.5))
        for qtype in av_digits_qa.QUESTION_TYPES:
            flags = [a for a, row in zip(agree, rows, strict=True) if row.question_type == qtype]
            assert abs(sum(flags) - share * len(flags)) <= 1
            assert abs(len(flags) - len(rows) / 4) <= 1


def test_disagreeing_voices_say_every_other_digit(labels: np.ndarray) -> None:
    rows = _plan(labels, 1000, 0.0)["train"]
    assert all(row.spoken != row.written for row in rows)
    assert sorted({row.spoken for row in rows}) == list(range(10))


def test_a_subset_of_question_types(labels: np.ndarray) -> None:
    rows = _plan(labels, 40, 0.5, types=("agree", "spoken"))["train"]
    counts = pd.Series([row.question_type for row in rows]).value_counts().to_dict()
    assert counts == {"agree": 20, "spoken": 20}


def test_plan_depends_on_the_seed_only(labels: np.ndarray) -> None:
    assert _plan(labels, 40, 0.5) == _plan(labels, 40, 0.5)
    assert _plan(labels, 40, 0.5) != _plan(labels, 40, 0.5, seed=1)


def test_spread_rounds_and_spreads_evenly() -> None:
    assert av_digits_qa.spread(5, 0.5).tolist() == [True, False, True, False, True]
    assert av_digits_qa.spread(7, 0.3).sum() == 2 and not av_digits_qa.spread(4, 0.0).any()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"agree_share": 1.5}, r"agree_share=1.5 must be in \[0, 1\]"),
        ({"agree_share": -0.1}, r"agree_share=-0.1 must be in \[0, 1\]"),
        ({"question_types": ("colour",)}, r"question_types=\['colour'\].*'colour' unknown"),
        ({"question_types": ()}, r"question_types=\[\]: give one or more distinct types"),
        ({"question_types": ("agree", "agree")}, r"give one or more distinct types"),
        ({"n_train": 0}, r"n_train=0: a dataset needs training rows"),
        ({"n_train": 1500, "n_valid": 200, "n_test": 200}, r"only 1797 images"),
        ({"pixel_drop": 1.5}, r"pixel_drop=1.5 must be in"),
        ({"voices": (["en-us"], [], ["en-029"])}, r"the valid split\(s\) have no voice"),
    ],
)
def test_bad_arguments_are_option_errors(tmp_path: Path, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(OptionError, match=message):
        build_av_digits_qa(tmp_path / "x", progress=False, **kwargs)  # type: ignore[arg-type]
    assert not (tmp_path / "x").exists()


def test_answer_for_an_unknown_type_is_an_option_error() -> None:
    with pytest.raises(OptionError, match="question_type='colour' is unknown; choose one of written"):
        av_digits_qa.answer_for("colour", 1, 2)


def test_missing_espeak_names_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(av_digits.shutil, "which", lambda name: None)
    with pytest.raises(SetupError, match="espeak-ng is not installed.*make setup"):
        build_av_digits_qa(tmp_path / "x", progress=False, **SIZES)
    assert not (tmp_path / "x").exists()

"""Unit tests of row preprocessing: examples, bad rows, targets, with stand-in preprocessors."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch
from torch import Tensor

from omnifuse.config.sections import Config
from omnifuse.data.dataset import (
    BadRow,
    ExampleDataset,
    attach_targets,
    fit_values,
    input_specs,
    make_example,
    make_examples,
)
from omnifuse.data.io import is_missing
from omnifuse.data.preprocess.base import Preprocessor
from omnifuse.encoders.base import InputSpec
from omnifuse.errors import BadValueError
from omnifuse.tasks import make_task
from omnifuse.tasks.base import MISSING_FIX, MISSING_REASON


class LengthText(Preprocessor):
    """Text -> its length; the word 'poison' is a bad value."""

    def __call__(self, value: Any) -> dict[str, Tensor]:
        assert isinstance(value, str)
        if "poison" in value:
            raise BadValueError(f"text {value!r} is poisoned", "remove the poison")
        return {"n": torch.tensor([float(len(value))])}

    def blank(self) -> dict[str, Tensor]:
        return {"n": torch.tensor([-1.0])}


class FileSize(Preprocessor):
    """A file (Path or bytes) -> its size in bytes."""

    def __init__(self) -> None:
        self.seen: list[Any] = []

    def __call__(self, value: Any) -> dict[str, Tensor]:
        self.seen.append(value)
        data = value if isinstance(value, bytes) else Path(value).read_bytes()
        return {"size": torch.tensor([float(len(data))])}

    def blank(self) -> dict[str, Tensor]:
        return {"size": torch.tensor([0.0])}


class SumTabular(Preprocessor):
    """The row's tabular cells -> their sum; non-numbers are bad values."""

    def __call__(self, value: Any) -> dict[str, Tensor]:
        try:
            return {"x": torch.tensor([float(sum(float(v) for v in value.values()))])}
        except ValueError:
            raise BadValueError(
                f"numeric column 'age': {value['age']!r} is not a number",
                "clean it",
                column="age",
                value=value["age"],
            ) from None

    def blank(self) -> dict[str, Tensor]:  # pragma: no cover - tabular rows are never blank
        return {"x": torch.tensor([0.0])}


def _config(allow_missing: bool) -> Config:
    return Config.from_dict(
        {
            "label": {"column": "y", "task": "multiclass"},
            "columns": {
                "note": {"type": "text", "allow_missing": allow_missing},
                "photo": {"type": "image"},
                "age": {"type": "numeric"},
                "city": {"type": "categorical"},
                "junk": {"type": "ignore"},
            },
        }
    )


def _setup(
    tmp_path: Path, allow_missing: bool = True
) -> tuple[Config, list[InputSpec], dict[str, Preprocessor]]:
    (tmp_path / "a.png").write_bytes(b"12345")
    (tmp_path / "b.png").write_bytes(b"12")
    cfg = _config(allow_missing)
    pres: dict[str, Preprocessor] = {"note": LengthText(), "photo": FileSize(), "tabular": SumTabular()}
    return cfg, input_specs(cfg), pres


def test_input_specs_sorted_and_grouped() -> None:
    specs = input_specs(_config(True))
    assert specs == [
        InputSpec("note", "text", {"note": "text"}),
        InputSpec("photo", "image", {"photo": "image"}),
        InputSpec("tabular", "tabular", {"age": "numeric", "city": "categorical"}),
    ]


def test_fit_values(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "note": ["hi", None, " ", 3],
            "photo": ["a.png", "/abs/b.png", float("nan"), "c.png"],
            "age": [1, 2, 3, 4],
            "city": ["x", "y", None, "z"],
        }
    )
    specs = {s.name: s for s in input_specs(_config(True))}
    assert fit_values(specs["note"], frame, tmp_path) == ["hi", "3"]
    assert fit_values(specs["photo"], frame, tmp_path) == [
        tmp_path / "a.png",
        Path("/abs/b.png"),
        tmp_path / "c.png",
    ]
    tab = fit_values(specs["tabular"], frame, tmp_path)
    assert tab[0] == {"age": 1, "city": "x"} and len(tab) == 4  # tabular rows keep their missing cells
    assert is_missing(tab[2]["city"])


def test_make_examples_good_rows(tmp_path: Path) -> None:
    cfg, specs, pres = _setup(tmp_path)
    frame = pd.DataFrame(
        {
            "note": ["hello", "hi"],
            "photo": ["a.png", str(tmp_path / "b.png")],
            "age": [1.0, 2.0],
            "city": [10, 20],
            "y": ["p", "q"],
        }
    )
    examples, bad = make_examples(frame, specs, pres, cfg, tmp_path)
    assert bad == []
    assert [e.index for e in examples] == [0, 1]
    first = examples[0]
    assert set(first.inputs) == {"note", "photo", "tabular"}
    assert torch.equal(first.inputs["note"]["n"], torch.tensor([5.0]))
    assert torch.equal(first.inputs["photo"]["size"], torch.tensor([5.0]))  # relative path resolved
    assert torch.equal(examples[1].inputs["photo"]["size"], torch.tensor([2.0]))  # absolute path kept
    assert torch.equal(first.inputs["tabular"]["x"], torch.tensor([11.0]))
    assert first.presence == {"note": True, "photo": True, "tabular": True}
    assert first.target is None
    assert pres["photo"].seen == [tmp_path / "a.png", tmp_path / "b.png"]  # type: ignore[attr-defined]


@pytest.mark.parametrize("empty", [None, float("nan"), "", "   "])
def test_empty_cell_allowed_gives_blank_and_absent(tmp_path: Path, empty: Any) -> None:
    cfg, specs, pres = _setup(tmp_path, allow_missing=True)
    frame = pd.DataFrame({"note": [empty], "photo": ["a.png"], "age": [1], "city": [2]})
    examples, bad = make_examples(frame, specs, pres, cfg, tmp_path)
    assert bad == []
    assert examples[0].presence["note"] is False
    assert torch.equal(examples[0].inputs["note"]["n"], torch.tensor([-1.0]))
    assert examples[0].presence["photo"] is True


def test_empty_cell_not_allowed_is_bad_row_with_fix(tmp_path: Path) -> None:
    cfg, specs, pres = _setup(tmp_path, allow_missing=False)
    frame = pd.DataFrame({"note": ["ok", None], "photo": ["a.png", "a.png"], "age": [1, 2], "city": [1, 2]})
    examples, bad = make_examples(frame, specs, pres, cfg, tmp_path)
    assert [e.index for e in examples] == [0]
    assert bad == [
        BadRow(
            1,
            "note",
            "",
            "the cell is empty",
            "fill it, or set columns.note.allow_missing: true to treat it as a missing modality",
        )
    ]


def test_missing_file_is_bad_row_naming_the_file(tmp_path: Path) -> None:
    cfg, specs, pres = _setup(tmp_path)
    frame = pd.DataFrame({"note": ["x"], "photo": ["pics/gone.png"], "age": [1], "city": [1]})
    examples, bad = make_examples(frame, specs, pres, cfg, tmp_path)
    assert examples == []
    (row,) = bad
    assert (row.row, row.column, row.value, row.fix) == (0, "photo", "pics/gone.png", "fix the path")
    assert row.reason == f"file 'pics/gone.png' does not exist (looked for {tmp_path / 'pics' / 'gone.png'})"


def test_bad_value_from_preprocessor_becomes_bad_row(tmp_path: Path) -> None:
    cfg, specs, pres = _setup(tmp_path)
    frame = pd.DataFrame(
        {
            "note": ["fine", "poison pill", "ok"],
            "photo": ["a.png"] * 3,
            "age": [1, 2, "old"],
            "city": [1, 2, 3],
        }
    )
    examples, bad = make_examples(frame, specs, pres, cfg, tmp_path)
    assert [e.index for e in examples] == [0]
    assert bad[0] == BadRow(1, "note", "poison pill", "text 'poison pill' is poisoned", "remove the poison")
    assert (bad[1].row, bad[1].reason, bad[1].fix) == (
        2,
        "numeric column 'age': 'old' is not a number",
        "clean it",
    )


def test_bad_tabular_cell_names_the_table_column(tmp_path: Path) -> None:
    cfg, specs, pres = _setup(tmp_path)
    frame = pd.DataFrame({"note": ["a"], "photo": ["a.png"], "age": ["old"], "city": [1]})
    _, bad = make_examples(frame, specs, pres, cfg, tmp_path)
    assert (bad[0].column, bad[0].value) == ("age", "old")


def test_long_values_are_shortened_in_bad_rows(tmp_path: Path) -> None:
    cfg, specs, pres = _setup(tmp_path)
    text = "poison " + "x" * 200
    frame = pd.DataFrame({"note": [text], "photo": ["a.png"], "age": [1], "city": [1]})
    _, bad = make_examples(frame, specs, pres, cfg, tmp_path)
    assert len(bad[0].value) == 80 and bad[0].value.endswith("...") and bad[0].value.startswith("poison x")


def test_bytes_pass_through_for_file_columns(tmp_path: Path) -> None:
    cfg, specs, pres = _setup(tmp_path)
    row = {"note": "x", "photo": b"raw-bytes", "age": 1, "city": 1}
    example, problem = make_example(4, row, specs, pres, cfg, tmp_path)
    assert problem is None and example is not None
    assert example.index == 4
    assert pres["photo"].seen == [b"raw-bytes"]  # type: ignore[attr-defined]
    assert torch.equal(example.inputs["photo"]["size"], torch.tensor([9.0]))
    example2, _ = make_example(5, {**row, "photo": bytearray(b"abc")}, specs, pres, cfg, tmp_path)
    assert example2 is not None and pres["photo"].seen[-1] == b"abc"  # type: ignore[attr-defined]


def test_text_cells_are_strings(tmp_path: Path) -> None:
    cfg, specs, pres = _setup(tmp_path)
    example, _ = make_example(
        0, {"note": 12345, "photo": "a.png", "age": 1, "city": 1}, specs, pres, cfg, tmp_path
    )
    assert example is not None and torch.equal(example.inputs["note"]["n"], torch.tensor([5.0]))


def test_example_index_is_the_tables_own_index(tmp_path: Path) -> None:
    cfg, specs, pres = _setup(tmp_path)
    frame = pd.DataFrame(
        {"note": ["a", "poison", "c"], "photo": ["a.png"] * 3, "age": [1, 2, 3], "city": [1, 2, 3]},
        index=[10, 20, 30],
    )
    examples, bad = make_examples(frame, specs, pres, cfg, tmp_path)
    assert [e.index for e in examples] == [10, 30]
    assert [b.row for b in bad] == [20]


def test_progress_callback_wraps_rows(tmp_path: Path) -> None:
    cfg, specs, pres = _setup(tmp_path)
    frame = pd.DataFrame(
        {"note": ["a", "b", "c"], "photo": ["a.png"] * 3, "age": [1, 2, 3], "city": [1, 2, 3]}
    )
    totals: list[int] = []

    def progress(rows: Iterator[Any], total: int) -> Iterator[Any]:
        totals.append(total)
        return rows

    examples, _ = make_examples(frame, specs, pres, cfg, tmp_path, progress)
    assert totals == [3] and len(examples) == 3


def test_example_dataset(tmp_path: Path) -> None:
    cfg, specs, pres = _setup(tmp_path)
    frame = pd.DataFrame({"note": ["a", "b"], "photo": ["a.png"] * 2, "age": [1, 2], "city": [1, 2]})
    examples, _ = make_examples(frame, specs, pres, cfg, tmp_path)
    data = ExampleDataset(examples)
    assert len(data) == 2 and data[1] is examples[1]


class StandInTask:
    """Labels must be ints; negative ones are unusable."""

    def check_labels(self, labels: Sequence[Any]) -> list[tuple[int, str, str]]:
        return [(i, f"label {v!r} is negative", "use >= 0") for i, v in enumerate(labels) if v < 0]

    def encode(self, label: Any) -> Tensor:
        return torch.tensor(label * 10)


def _plain_examples(tmp_path: Path, n: int) -> list[Any]:
    cfg, specs, pres = _setup(tmp_path)
    frame = pd.DataFrame({"note": ["a"] * n, "photo": ["a.png"] * n, "age": list(range(n)), "city": [1] * n})
    examples, _ = make_examples(frame, specs, pres, cfg, tmp_path)
    return examples


def test_attach_targets_with_stand_in_task(tmp_path: Path) -> None:
    examples = _plain_examples(tmp_path, 3)
    kept, bad = attach_targets(examples, pd.Series([1, -2, 3]), StandInTask(), "y")  # type: ignore[arg-type]
    assert [e.index for e in kept] == [0, 2]
    assert [int(e.target) for e in kept] == [10, 30]  # type: ignore[arg-type]
    assert bad == [BadRow(1, "y", "-2", "label -2 is negative", "use >= 0")]


def test_attach_targets_uses_example_index_not_position(tmp_path: Path) -> None:
    examples = _plain_examples(tmp_path, 3)[1:]  # row 0 was dropped earlier (a bad input row)
    kept, _ = attach_targets(examples, pd.Series([5, 6, 7]), StandInTask(), "y")  # type: ignore[arg-type]
    assert [int(e.target) for e in kept] == [60, 70]  # type: ignore[arg-type]


def test_attach_targets_with_a_non_default_index(tmp_path: Path) -> None:
    cfg, specs, pres = _setup(tmp_path)
    frame = pd.DataFrame(
        {
            "note": ["a", "b", "c"],
            "photo": ["a.png"] * 3,
            "age": [1, 2, 3],
            "city": [1, 2, 3],
            "y": [4, -1, 6],
        },
        index=[7, 3, 5],
    )
    examples, _ = make_examples(frame, specs, pres, cfg, tmp_path)
    kept, bad = attach_targets(examples, frame["y"], StandInTask(), "y")  # type: ignore[arg-type]
    assert [(e.index, int(e.target)) for e in kept] == [(7, 40), (5, 60)]  # type: ignore[arg-type]
    assert bad == [BadRow(3, "y", "-1", "label -1 is negative", "use >= 0")]


def test_attach_targets_with_real_classification_task(tmp_path: Path) -> None:
    task = make_task("multiclass", "|")
    task.fit(["cat", "dog", "cat"])
    examples = _plain_examples(tmp_path, 4)
    kept, bad = attach_targets(examples, pd.Series(["dog", None, "cat", "bird"]), task, "animal")
    assert [e.index for e in kept] == [0, 2]
    assert [int(e.target) for e in kept] == [1, 0]  # type: ignore[arg-type]
    assert bad[0] == BadRow(1, "animal", "", MISSING_REASON, MISSING_FIX)
    assert bad[1].row == 3 and bad[1].column == "animal" and bad[1].value == "bird"
    assert bad[1].reason == "label 'bird' is not one of the classes seen in training ('cat', 'dog')"
    assert math.isclose(len(kept) + len(bad), 4)

"""validate_table: reads, fits and preprocesses every row like training, reports, never trains."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from rich.console import Console

from omnifuse import Config
from omnifuse.errors import ConfigError, DataError
from omnifuse.workflows.table_checks import ValidationReport, run_validate, validate_table

CONFIG = {
    "label": {"column": "y", "task": "multiclass"},
    "columns": {
        "note": {"type": "text", "encoder": {"name": "bow", "embed_dim": 8}},
        "size": {"type": "numeric"},
        "colour": {"type": "categorical"},
    },
}


def _table(folder: Path, **changes: tuple[int, Any]) -> Path:
    frame = pd.DataFrame(
        {
            "note": ["purr soft", "bark loud", "hoot night", "purr nap", "bark run", "hoot tree"],
            "size": [1.0, 2.0, 3.0, 1.5, 2.5, 3.5],
            "colour": ["red", "blue", "red", "blue", "red", "green"],
            "y": ["cat", "dog", "owl", "cat", "dog", "owl"],
        }
    ).astype(object)
    for column, (row, value) in changes.items():
        frame.loc[row, column] = value
    frame.to_csv(folder / "t.csv", index=False)
    return folder / "t.csv"


def _config(folder: Path, raw: dict[str, object] | None = None) -> Path:
    (folder / "c.yaml").write_text(yaml.safe_dump(raw or CONFIG))
    return folder / "c.yaml"


def test_clean_table_reports_columns_and_no_bad_rows(tmp_path: Path) -> None:
    report = validate_table(_config(tmp_path), _table(tmp_path), out=tmp_path / "v")
    assert isinstance(report, ValidationReport) and report.ok and report.rows == 6
    summary = {c.column: c for c in report.columns}
    assert list(summary) == ["colour", "note", "size", "y"]  # config columns sorted, then the label
    assert summary["size"].detail == "min 1, mean 2.25, max 3.5"
    assert summary["colour"].detail == "3 distinct: blue, green, red"
    assert summary["y"].type == "label (multiclass)"
    assert not (tmp_path / "v" / "bad_rows.csv").exists()
    assert report.bad_rows_file is None


def test_bad_rows_are_listed_with_reason_and_fix_and_written(tmp_path: Path) -> None:
    table = _table(tmp_path, note=(1, "  "), size=(3, "big"), y=(5, None))
    config = Config.from_yaml(_config(tmp_path))  # on_bad_row: error still lists every row
    report = validate_table(config, table, out=tmp_path / "v")
    assert not report.ok
    assert [(b.row, b.column) for b in report.bad_rows] == [(1, "note"), (3, "size"), (5, "y")]
    assert report.bad_rows[1].value == "big" and "is not a number" in report.bad_rows[1].reason
    assert all(b.fix for b in report.bad_rows)
    summary = {c.column: c for c in report.columns}
    assert (summary["note"].missing, summary["note"].bad) == (1, 1)
    assert (summary["size"].bad, summary["y"].missing) == (1, 1)
    written = pd.read_csv(tmp_path / "v" / "bad_rows.csv")
    assert written["row"].tolist() == [1, 3, 5]
    assert report.bad_rows_file == tmp_path / "v" / "bad_rows.csv"


def test_a_second_run_replaces_bad_rows_csv(tmp_path: Path) -> None:
    validate_table(_config(tmp_path), _table(tmp_path, size=(3, "big")), out=tmp_path)
    validate_table(_config(tmp_path), _table(tmp_path, size=(2, "huge")), out=tmp_path)
    assert pd.read_csv(tmp_path / "bad_rows.csv")["row"].tolist() == [2]
    validate_table(_config(tmp_path), _table(tmp_path), out=tmp_path)
    assert not (tmp_path / "bad_rows.csv").exists()


def test_printed_report_names_row_column_value_and_verdict(tmp_path: Path) -> None:
    console = Console(record=True, width=200)
    validate_table(_config(tmp_path), _table(tmp_path, size=(3, "big")), out=tmp_path, console=console)
    text = console.export_text()
    assert "Checked 6 row(s)" in text and "1 bad row(s)" in text
    assert "big" in text and "is not a number" in text
    assert "1 of 6 row(s)" in text and "data.on_bad_row: skip" in text
    console = Console(record=True, width=200)
    validate_table(_config(tmp_path), _table(tmp_path), console=console)
    assert "OK: all 6 row(s)" in console.export_text()


def test_missing_column_and_unreadable_table(tmp_path: Path) -> None:
    table = _table(tmp_path)
    pd.read_csv(table).drop(columns=["colour"]).to_csv(table, index=False)
    with pytest.raises(DataError, match=r"has no column 'colour'"):
        validate_table(_config(tmp_path), table)
    with pytest.raises(DataError, match=r"does not exist"):
        validate_table(_config(tmp_path), tmp_path / "nope.csv")


def test_bad_config_is_an_error(tmp_path: Path) -> None:
    raw = yaml.safe_load(yaml.safe_dump(CONFIG))
    raw["columns"]["note"]["encoder"]["name"] = "bowz"
    with pytest.raises(ConfigError, match=r"unknown encoder 'bowz'"):
        validate_table(_config(tmp_path, raw), _table(tmp_path))


def test_validate_never_trains(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import omnifuse.api
    import omnifuse.build

    def boom(*args: object, **kwargs: object) -> None:
        raise AssertionError("validate must not build or train a model")

    monkeypatch.setattr(omnifuse.build, "build_model", boom)
    monkeypatch.setattr(omnifuse.api, "fit_prepared", boom)
    assert validate_table(_config(tmp_path), _table(tmp_path), out=tmp_path / "v").ok
    assert not (tmp_path / "v").exists()  # a clean table writes nothing


def test_run_validate_exit_codes(tmp_path: Path) -> None:
    console = Console(record=True, width=200)
    assert run_validate(_config(tmp_path), _table(tmp_path), None, console) == 0
    assert run_validate(_config(tmp_path), _table(tmp_path, size=(0, "x")), tmp_path / "v", console) == 1
    assert run_validate(_config(tmp_path), tmp_path / "nope.csv", None, console) == 2
    text = console.export_text()
    assert "error:" in text and "nope.csv' does not exist" in text


CONTRASTIVE = {
    "label": {"task": "contrastive"},
    "columns": {
        "note": {"type": "text", "encoder": {"name": "bow", "embed_dim": 8}},
        "title": {"type": "text", "encoder": {"name": "bow", "embed_dim": 8}},
    },
    "contrastive": {"columns": ["note", "title"], "embed_dim": 4},
}


def test_contrastive_config_without_a_label_validates(tmp_path: Path) -> None:
    frame = pd.DataFrame({"note": ["purr soft", "bark loud", " "], "title": ["cat", "dog", "owl"]})
    frame.to_csv(tmp_path / "pairs.csv", index=False)
    report = validate_table(_config(tmp_path, CONTRASTIVE), tmp_path / "pairs.csv")
    assert [c.column for c in report.columns] == ["note", "title"]  # no label to summarise
    assert [(b.row, b.column) for b in report.bad_rows] == [(2, "note")]  # a pair needs both sides


def test_contrastive_config_with_a_label_column_summarises_it(tmp_path: Path) -> None:
    raw = {**CONTRASTIVE, "label": {"task": "contrastive", "column": "y"}}
    frame = pd.DataFrame({"note": ["purr soft", "bark loud"], "title": ["cat", "dog"], "y": ["c", None]})
    frame.to_csv(tmp_path / "pairs.csv", index=False)
    report = validate_table(_config(tmp_path, raw), tmp_path / "pairs.csv")
    assert report.ok  # a missing label only masks nothing in the contrastive loss
    assert {c.column: c.type for c in report.columns}["y"] == "label (contrastive)"


def _leaky(folder: Path) -> tuple[Path, Path]:
    labels = [["cat", "dog", "owl"][i % 3] for i in range(30)]
    frame = pd.DataFrame({
        "note": [f"a picture of a {y}" for y in labels],  # names the label
        "size": [float(i % 7) for i in range(30)],
        "colour": ["red"] * 30,  # one value
        "y": labels,
    })
    frame.to_csv(folder / "leaky.csv", index=False)
    return _config(folder), folder / "leaky.csv"


def test_leaks_and_constant_inputs_are_warnings_in_the_report_and_its_file(tmp_path: Path) -> None:
    config, table = _leaky(tmp_path)
    console = Console(record=True, width=300)
    report = validate_table(config, table, out=tmp_path / "v", console=console)
    assert report.ok  # warnings do not make rows bad
    assert [(f.column, f.kind) for f in report.findings] == [("colour", "constant"), ("note", "leak")]
    text = console.export_text()
    assert ("warning: column 'note' predicts the label exactly in 100% of training rows: a leak? "
            "set `type: ignore`") in text
    assert "warning: column 'colour' holds the single value 'red' in all 30 non-empty training rows" in text
    assert f"OK: all 30 row(s) of {table} can be used (2 column warning(s) above, listed in " in text
    written = pd.read_csv(tmp_path / "v" / "column_warnings.csv")
    assert written["column"].tolist() == ["colour", "note"] and report.warnings_file is not None
    assert written["message"][1] == report.findings[1].message
    assert run_validate(config, table, tmp_path / "v", console) == 0  # the exit status is unchanged
    validate_table(config, _table(tmp_path), out=tmp_path / "v")
    assert not (tmp_path / "v" / "column_warnings.csv").exists()  # a clean table: no stale warnings


def test_an_out_of_range_option_is_caught_before_any_row_is_read(tmp_path: Path) -> None:
    import omnifuse

    raw = {**CONFIG, "fusion": {"name": "attention", "dim": 0}}
    console = Console(record=True, width=300)
    missing = tmp_path / "never_read.csv"  # does not exist: the config is refused first
    assert run_validate(_config(tmp_path, raw), missing, None, console) == 2
    text = console.export_text()
    assert "fusion.dim: 0 is out of range: it must be >= 1; set e.g. the default, 128" in text
    assert "never_read" not in text
    with pytest.raises(ConfigError, match=r"fusion.dim: 0 is out of range: it must be >= 1"):
        omnifuse.train(_config(tmp_path, raw), train=missing, out=tmp_path / "m", progress=False)
    assert not (tmp_path / "m").exists()

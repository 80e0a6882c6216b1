"""The single-row fast path and the DataLoader-worker batch path predict exactly what the batch path does."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch

import omnifuse
from omnifuse.errors import BadRowError, DataError
from omnifuse.inference.predict_table import predict_table

INPUTS = ["photo", "sound", "note", "weight", "colour"]


@pytest.fixture(scope="module")
def predictor(trained_dir: Path) -> omnifuse.Predictor:
    return omnifuse.load(trained_dir, device="cpu")


def test_one_row_fast_path_equals_the_batch_path(predictor: omnifuse.Predictor, table_dir: Path) -> None:
    frame = pd.read_csv(table_dir / "test.csv")[INPUTS]
    batch = predictor.logits(frame, base_dir=table_dir)  # (N, C), rows collated 64 at a time
    for i, row in enumerate(frame.to_dict(orient="records")[:8]):
        one = predictor.logits(row, base_dir=table_dir)  # (1, C)
        assert one.shape == (1, batch.shape[1])
        torch.testing.assert_close(one[0], batch[i], rtol=0, atol=1e-6)
        assert predictor.predict(row, base_dir=table_dir) == predictor.predict(frame.iloc[[i]],
                                                                               base_dir=table_dir)[0]


def test_one_row_fast_path_reports_a_missing_column_and_a_bad_file(
    predictor: omnifuse.Predictor, table_dir: Path
) -> None:
    row = pd.read_csv(table_dir / "test.csv")[INPUTS].iloc[0].to_dict()
    with pytest.raises(DataError, match="sound"):
        predictor.predict({k: v for k, v in row.items() if k != "sound"}, base_dir=table_dir)
    with pytest.raises(BadRowError, match=r"column 'photo' row 0: file 'img/nope.png' does not exist"):
        predictor.predict({**row, "photo": "img/nope.png"}, base_dir=table_dir)


def test_workers_predict_the_same_rows_in_order(predictor: omnifuse.Predictor, table_dir: Path) -> None:
    predictor.batch_size = 7  # several batches, the last one short
    try:
        plain = predictor.logits(table_dir / "test.csv")
        lazy = predictor.logits(table_dir / "test.csv", num_workers=2)
    finally:
        predictor.batch_size = 64
    assert lazy.shape == plain.shape
    torch.testing.assert_close(lazy, plain, rtol=0, atol=0)
    one_worker = predict_table(predictor, table_dir / "test.csv", num_workers=1)
    assert one_worker.equals(predict_table(predictor, table_dir / "test.csv"))


def test_workers_report_bad_rows_with_row_and_column(predictor: omnifuse.Predictor, table_dir: Path) -> None:
    frame = pd.read_csv(table_dir / "test.csv")
    frame.loc[3, "photo"] = "img/missing.png"
    frame.loc[9, "sound"] = "wav/missing.wav"
    bad = r"column 'photo' row 3: file 'img/missing.png' does not exist.*1 more bad row"
    with pytest.raises(BadRowError, match=bad):
        predictor.predict(frame[INPUTS], base_dir=table_dir, num_workers=2)
    with pytest.raises(DataError, match="num_workers must be 0 or more, got -1; pass 2 for two worker"):
        predictor.predict(frame, base_dir=table_dir, num_workers=-1)


def test_cli_predict_with_workers(trained_dir: Path, table_dir: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from omnifuse.cli import app

    outs = {}
    for workers in ("0", "2"):
        outs[workers] = tmp_path / f"p{workers}.csv"
        result = CliRunner().invoke(app, ["predict", "--model", str(trained_dir), "--data",
                                          str(table_dir / "test.csv"), "--out", str(outs[workers]),
                                          "--workers", workers])
        assert result.exit_code == 0, result.output
    assert pd.read_csv(outs["0"]).equals(pd.read_csv(outs["2"]))

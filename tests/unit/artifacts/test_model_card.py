"""Unit tests of the model card (README.md) and of predict_table, on a tiny saved model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch

from omnifuse.artifacts.folder import save_model
from omnifuse.artifacts.model_card import render_model_card, write_model_card
from omnifuse.build import build_model, make_preprocessors
from omnifuse.config.sections import Config
from omnifuse.data.dataset import fit_values, input_specs
from omnifuse.errors import BadRowError, DataError
from omnifuse.inference.predict_table import predict_table
from omnifuse.inference.predictor import load
from omnifuse.tasks import make_task
from omnifuse.tasks.base import Task
from omnifuse.version import __version__

FRAME = pd.DataFrame(
    {
        "review": ["good film", "bad film", "great fun", "awful plot", "good plot", "bad acting"],
        "age": [1.0, 2.0, None, 4.0, 5.0, 6.0],
        "city": ["a", "b", "a", None, "c", "b"],
        "y": ["pos", "neg", "pos", "neg", "mid", "neg"],
    }
)


def _config(task: str = "multiclass") -> Config:
    return Config.from_dict(
        {
            "label": {"column": "y", "task": task},
            "columns": {
                "review": {"type": "text", "encoder": {"name": "bow", "embed_dim": 8}, "allow_missing": True},
                "age": {"type": "numeric"},
                "city": {"type": "categorical"},
                "notes": {"type": "ignore"},
            },
            "tabular": {"name": "tabular_mlp", "embed_dim": 4, "hidden_dim": 8},
            "fusion": "concat",
            "head": {"hidden_dim": 6},
        }
    )


def _task(name: str = "multiclass") -> Task:
    task = make_task(name)
    task.fit(list(FRAME["y"]) if name != "regression" else [1.0, 2.0, 4.0])
    return task


def _save(folder: Path, task_name: str = "multiclass") -> Path:
    cfg = _config(task_name)
    preprocessors = make_preprocessors(cfg)
    for spec in input_specs(cfg):
        preprocessors[spec.name].fit(fit_values(spec, FRAME, Path(".")))
    task = _task(task_name)
    save_model(folder, cfg, preprocessors, task, build_model(cfg, preprocessors, task))
    return folder


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    return _save(tmp_path_factory.mktemp("card") / "model")


METRICS: dict[str, Any] = {
    "split": "test",
    "accuracy": 0.8333333,
    "macro_f1": 0.5,
    "rmse": None,
    "r2": 1,
    "confusion_matrix": [[1, 0], [0, 1]],
    "stop_reason": "x",
}


def test_card_title_version_fusion() -> None:
    card = render_model_card(_config(), _task(), METRICS)
    lines = card.splitlines()
    assert lines[0] == "# omnifuse model: predicts `y` (multiclass)"
    assert f"Trained with omnifuse {__version__}. Fusion: `concat`." in lines
    assert card.endswith("\n")


def test_card_inputs_table() -> None:
    card = render_model_card(_config(), _task(), METRICS)
    table = card.split("## Inputs\n\n")[1].split("\n\n")[0].splitlines()
    assert table == [
        "| column | type | encoder | may be empty |",
        "|---|---|---|---|",
        "| `age` | numeric | `tabular_mlp (shared tabular)` | no |",
        "| `city` | categorical | `tabular_mlp (shared tabular)` | no |",
        "| `review` | text | `bow` | yes |",
    ]
    assert "notes" not in card  # ignored columns are not inputs


def test_card_classes_and_metrics() -> None:
    card = render_model_card(_config(), _task(), METRICS)
    assert "Classes: `mid`, `neg`, `pos`" in card
    metrics = card.split("## Metrics (test split)\n\n")[1].split("\n\n")[0].splitlines()
    assert metrics == ["| metric | value |", "|---|---|", "| accuracy | 0.8333 |", "| macro_f1 | 0.5000 |"]
    # None, ints, lists and non-headline keys are left out of the table
    assert "rmse" not in card and "r2" not in card and "confusion" not in card and "stop_reason" not in card


def test_card_regression_has_no_classes_and_default_split() -> None:
    card = render_model_card(_config("regression"), _task("regression"), {"rmse": 0.25, "mae": 0.125})
    assert "Classes:" not in card
    assert "# omnifuse model: predicts `y` (regression)" in card
    assert "## Metrics (validation split)" in card
    assert "| rmse | 0.2500 |" in card and "| mae | 0.1250 |" in card


def test_card_usage_section() -> None:
    card = render_model_card(_config(), _task(), {})
    assert "predictor = omnifuse.load('path/to/this/folder')" in card
    assert "omnifuse predict --model path/to/this/folder --data table.csv --out predictions.csv" in card
    assert "no pickle" in card


def test_write_model_card(tmp_path: Path) -> None:
    path = write_model_card(tmp_path, _config(), _task(), METRICS)
    assert path == tmp_path / "README.md"
    assert path.read_text(encoding="utf-8") == render_model_card(_config(), _task(), METRICS)


ROWS = pd.DataFrame(
    {
        "review": ["good film", "bad plot", None, "unseen words here"],
        "age": [3.0, None, 1.0, 9.0],
        "city": ["a", "zzz", None, "b"],
    },
    index=[40, 10, 30, 20],
)


def test_predict_table_one_row_per_input_in_order(model_dir: Path) -> None:
    table = predict_table(model_dir, ROWS)
    assert list(table.columns) == ["prediction", "proba_mid", "proba_neg", "proba_pos"]
    assert len(table) == len(ROWS)
    probs = table[["proba_mid", "proba_neg", "proba_pos"]].to_numpy()
    assert ((probs >= 0) & (probs <= 1)).all()
    assert abs(probs.sum(axis=1) - 1).max() < 1e-5
    classes = ["mid", "neg", "pos"]
    assert list(table["prediction"]) == [classes[i] for i in probs.argmax(axis=1)]
    # in order: row i of the output is row i of the input, whatever the frame's index
    predictor = load(model_dir, device="cpu")
    single = [predict_table(predictor, ROWS.iloc[[i]]).iloc[0] for i in range(len(ROWS))]
    for i, row in enumerate(single):
        assert row["prediction"] == table["prediction"].iloc[i]
        assert row["proba_pos"] == pytest.approx(table["proba_pos"].iloc[i], abs=1e-6)


def test_predict_table_matches_predictor(model_dir: Path) -> None:
    predictor = load(model_dir, device="cpu")
    table = predict_table(predictor, ROWS)
    assert list(table["prediction"]) == predictor.predict(ROWS)
    proba = predictor.predict_proba(ROWS)
    assert abs(table["proba_neg"].to_numpy() - proba["neg"].to_numpy()).max() < 1e-6


def test_predict_table_from_a_csv_path(model_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    ROWS.to_csv(path, index=False)
    from_file = predict_table(str(model_dir), path)
    from_frame = predict_table(model_dir, ROWS)
    assert list(from_file["prediction"]) == list(from_frame["prediction"])


def test_predict_table_regression_has_no_proba(tmp_path: Path) -> None:
    folder = _save(tmp_path / "reg", "regression")
    table = predict_table(folder, ROWS)
    assert list(table.columns) == ["prediction"]
    assert len(table) == 4 and all(isinstance(v, float) for v in table["prediction"])


def test_predict_table_missing_column(model_dir: Path) -> None:
    with pytest.raises(DataError, match=r"has no column 'city'"):
        predict_table(model_dir, ROWS.drop(columns=["city"]))


def test_predict_table_bad_row(model_dir: Path) -> None:
    rows = ROWS.copy()
    rows["age"] = rows["age"].astype(object)
    rows.loc[10, "age"] = "old"
    with pytest.raises(BadRowError, match=r"row 1: numeric column 'age': 'old' is not a number"):
        predict_table(model_dir, rows)


def _contrastive(loss: str = "clip") -> tuple[Config, Task]:
    from omnifuse.build import make_task_for

    cfg = Config.from_dict({
        "label": {"task": "contrastive"},
        "columns": {"photo": {"type": "image", "encoder": {"name": "small_cnn", "size": 8, "widths": [4]}},
                    "review": {"type": "text", "encoder": {"name": "bow", "embed_dim": 8}}},
        "contrastive": {"columns": ["photo", "review"], "embed_dim": 16, "loss": loss, "queue_size": 32},
    })
    return cfg, make_task_for(cfg)


def test_contrastive_card_describes_towers_embedding_loss_and_retrieval_metrics() -> None:
    cfg, task = _contrastive()
    metrics = {"split": "test", "recall@1": 0.25, "mrr": 0.5, "precision@10": 0.75,
               "photo->review/recall@1": 0.125, "accuracy": 0.9}
    card = render_model_card(cfg, task, metrics)
    assert card.splitlines()[0] == "# omnifuse model: contrastive embeddings of `photo`, `review`"
    assert "predicts ``" not in card and "omnifuse predict" not in card and "accuracy" not in card
    assert "| `photo` | image | `small_cnn` |" in card and "| `review` | text | `bow` |" in card
    assert "shared 16-d L2-normalised embedding" in card
    assert "loss: `clip`, symmetric InfoNCE (CLIP" in card and "learnt, starting at 0.07" in card
    assert "queue of recent embeddings: 32" in card and "trained without labels" in card
    table = card.split("## Retrieval metrics (test split)\n\n")[1].split("## Use")[0]
    assert "| recall@1 | 0.2500 |\n| mrr | 0.5000 |\n| precision@10 | 0.7500 |" in table
    assert "| photo->review/recall@1 | 0.1250 |" in table


def test_contrastive_card_shows_embed_index_search_and_zero_shot() -> None:
    cfg, task = _contrastive("siglip")
    card = render_model_card(cfg, task, {})
    assert "pairwise sigmoid (SigLIP" in card and "## Retrieval metrics (validation split)" in card
    assert "predictor.embed(rows, column='photo')  # (N, 16), L2-normalised" in card
    assert "omnifuse index --model path/to/this/folder --data table.csv --column photo --out index/" in card
    assert 'omnifuse search --index index/ --text "a black ankle boot" --k 10' in card
    assert "omnifuse zero-shot --model path/to/this/folder --data table.csv --column photo" in card

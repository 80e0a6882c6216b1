"""The Python API end to end: train from DataFrames, load, predict from a DataFrame, a list or one dict."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import omnifuse
from omnifuse.config.sections import Config
from omnifuse.errors import BadRowError, DataError


def test_load_and_predict_every_row_shape(trained_dir: Path, table_dir: Path) -> None:
    predictor = omnifuse.load(trained_dir)
    frame = pd.read_csv(table_dir / "test.csv").drop(columns=["animal"])
    preds = predictor.predict(frame, base_dir=table_dir)
    assert len(preds) == len(frame) and set(preds) <= {"cat", "dog", "owl"}
    records = frame.head(3).to_dict(orient="records")
    assert predictor.predict(records, base_dir=table_dir) == preds[:3]
    one = predictor.predict(records[0], base_dir=table_dir)
    assert one == preds[0]
    proba = predictor.predict_proba(frame, base_dir=table_dir)
    assert list(proba.columns) == ["cat", "dog", "owl"]
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    assert predictor.predict_proba(records[0], base_dir=table_dir).keys() == {"cat", "dog", "owl"}
    emb = predictor.embed(frame, base_dir=table_dir)
    assert emb.shape[0] == len(frame) and np.isfinite(emb).all()


def test_trained_model_learns_the_table(trained_dir: Path, table_dir: Path) -> None:
    metrics = omnifuse.evaluate(trained_dir, table_dir / "test.csv", progress=False)
    assert metrics["accuracy"] >= 0.8  # classes are separable in every modality


def test_predict_from_absolute_paths_without_base_dir(trained_dir: Path, table_dir: Path) -> None:
    frame = pd.read_csv(table_dir / "test.csv").drop(columns=["animal"]).head(2)
    for column in ("photo", "sound"):
        frame[column] = [str(table_dir / p) for p in frame[column]]
    assert len(omnifuse.load(trained_dir).predict(frame)) == 2


def test_predict_names_missing_column(trained_dir: Path) -> None:
    with pytest.raises(DataError, match=r"has no column 'photo'"):
        omnifuse.load(trained_dir).predict({"sound": "x.wav", "note": "hi", "weight": 1.0, "colour": "red"})


def _tabular_frame(n: int, task: str, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    colour = rng.choice(["red", "green", "blue"], size=n)
    words = np.where(x > 0, "bright shiny", "dull grey")
    if task == "regression":
        label: object = 3.0 * x + (colour == "red") + rng.normal(scale=0.1, size=n)
    elif task == "binary":
        label = np.where(x > 0, "yes", "no")
    else:
        label = [
            "|".join(t for t, on in (("hot", x > 0), ("red", c == "red")) if on) or "none"
            for x, c in zip(x, colour, strict=True)
        ]
    return pd.DataFrame(
        {"x": x, "colour": colour, "words": [f"{w} {i}" for i, w in enumerate(words)], "target": label}
    )


@pytest.mark.parametrize(
    ("task", "metric", "bound"),
    [("binary", "accuracy", 0.85), ("regression", "r2", 0.8), ("multilabel", "micro_f1", 0.7)],
)
def test_every_task_trains_from_dataframes(task: str, metric: str, bound: float, tmp_path: Path) -> None:
    config = Config.from_dict(
        {
            "label": {"column": "target", "task": task},
            "columns": {
                "x": {"type": "numeric"},
                "colour": {"type": "categorical"},
                "words": {"type": "text", "encoder": {"name": "bow", "embed_dim": 16}},
            },
            "fusion": "concat",
            "training": {"epochs": 25, "batch_size": 32, "lr": 0.01, "patience": 25},
        }
    )
    predictor = omnifuse.train(
        config,
        train=_tabular_frame(300, task),
        valid=_tabular_frame(100, task, seed=1),
        out=tmp_path / "m",
        progress=False,
    )
    metrics = omnifuse.evaluate(
        predictor, _tabular_frame(100, task, seed=2), tmp_path / "eval", progress=False
    )
    assert metrics[metric] >= bound, metrics
    assert (tmp_path / "eval" / "report.md").exists()


def _image_only_config(table_dir: Path, **data: object) -> Config:
    return Config.from_dict(
        {
            "label": {"column": "animal", "task": "multiclass"},
            "columns": {
                "photo": {
                    "type": "image",
                    "encoder": {"name": "small_cnn", "size": 16, "channels": 1},
                    "allow_missing": data.pop("allow_missing", False),
                },
                "weight": {"type": "numeric"},
            },
            "data": data,
            "training": {"epochs": 1, "batch_size": 16},
        }
    )


def test_bad_rows_error_names_row_column_and_fix(table_dir: Path, tmp_path: Path) -> None:
    frame = pd.read_csv(table_dir / "train.csv")
    (table_dir / "img" / "broken.png").write_bytes(b"not a png at all")
    frame.loc[5, "photo"] = "img/broken.png"
    with pytest.raises(BadRowError, match=r"column 'photo' row 5: .*broken\.png.*on_bad_row: skip"):
        omnifuse.train(
            _image_only_config(table_dir), train=frame, out=tmp_path / "m", base_dir=table_dir, progress=False
        )
    assert not (tmp_path / "m" / "model.safetensors").exists()


def test_skip_bad_rows_lists_them(table_dir: Path, tmp_path: Path) -> None:
    frame = pd.read_csv(table_dir / "train.csv")
    frame.loc[2, "photo"] = "img/missing.png"
    frame.loc[7, "animal"] = None
    frame.loc[9, "photo"] = ""
    omnifuse.train(
        _image_only_config(table_dir, on_bad_row="skip"),
        train=frame,
        out=tmp_path / "m",
        base_dir=table_dir,
        progress=False,
    )
    bad = pd.read_csv(tmp_path / "m" / "bad_rows.csv")
    assert sorted(bad["row"]) == [2, 7, 9]
    assert set(bad["column"]) == {"photo", "animal"}


def test_empty_cells_become_missing_modality_when_allowed(table_dir: Path, tmp_path: Path) -> None:
    frame = pd.read_csv(table_dir / "train.csv")
    frame.loc[::4, "photo"] = None
    predictor = omnifuse.train(
        _image_only_config(table_dir, allow_missing=True),
        train=frame,
        out=tmp_path / "m",
        base_dir=table_dir,
        progress=False,
    )
    assert not (tmp_path / "m" / "bad_rows.csv").exists()
    row = frame.drop(columns=["animal"]).iloc[0].to_dict()
    row["photo"] = None
    assert predictor.predict(row, base_dir=table_dir) in {"cat", "dog", "owl"}


def test_one_class_table_is_refused(table_dir: Path, tmp_path: Path) -> None:
    frame = pd.read_csv(table_dir / "train.csv").assign(animal="cat")
    with pytest.raises(DataError, match="at least two classes"):
        omnifuse.train(
            _image_only_config(table_dir), train=frame, out=tmp_path / "m", base_dir=table_dir, progress=False
        )


def test_label_unseen_in_training_at_evaluation(trained_dir: Path, table_dir: Path, tmp_path: Path) -> None:
    frame = pd.read_csv(table_dir / "test.csv")
    frame.loc[4, "animal"] = "yak"
    frame.to_csv(table_dir / "test_yak.csv", index=False)
    with pytest.raises(BadRowError, match=r"column 'animal' row 4: .*yak"):
        omnifuse.evaluate(trained_dir, table_dir / "test_yak.csv", tmp_path / "e", progress=False)


def test_restore_best_false_keeps_the_final_epochs_weights(
    table_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    from omnifuse.config.sections import Config
    from omnifuse.training.checkpoint import BEST, load_checkpoint, load_weights
    from omnifuse.training.early_stopping import EarlyStopping

    original = EarlyStopping.update

    def first_epoch_is_best(self: EarlyStopping, score: float, epoch: int, loss: float) -> bool:
        original(self, score, epoch, loss)
        return epoch == 0  # so the best weights (epoch 1) differ from the final ones (epoch 3)

    monkeypatch.setattr(EarlyStopping, "update", first_epoch_is_best)
    weights = {}
    for restore in (True, False):
        config = Config.from_yaml(table_dir / "config.yaml")
        config.training.restore_best = restore
        config.training.ema_decay = 0.0  # the raw weights, to compare with the last checkpoint's
        out = tmp_path / f"restore_{restore}"
        weights[restore] = omnifuse.train(config, train=table_dir / "train.csv", out=out,
                                          progress=False).model.state_dict()
        final, best = load_checkpoint(out / "checkpoints")["model"], load_weights(out / "checkpoints" / BEST)
        kept = final if not restore else best
        kept = {k: v for k, v in kept.items() if not k.startswith("aux_heads.")}  # training-only heads
        assert all(torch.equal(weights[restore][k], v) for k, v in kept.items())
        assert not all(torch.equal(final[k], v) for k, v in best.items())
    metrics = json.loads((tmp_path / "restore_False" / "metrics.json").read_text())
    assert metrics["best_epoch"] == 3  # the epoch the kept weights come from

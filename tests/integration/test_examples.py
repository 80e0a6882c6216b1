"""The example configs in examples/ validate, train for one or two epochs on a tiny table, and predict.

The table comes from examples/make_example_table.py. Example 3 names a hub ViT; here it is pointed at a
tiny ViT built from a ``ViTConfig`` in a tmp folder (offline), and its text encoder is the real packaged
MiniLM.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest

import omnifuse
import omnifuse.catalog  # noqa: F401  (fills the registries the configs are validated against)
from omnifuse.config.sections import Config

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
LABELS = {"sentiment": ["negative", "positive"], "animal": ["bird", "cat", "dog"]}

# config file, label column, fusion name, epochs
CASES = [
    ("01_textcnn_cnn_lstm_transformer.yaml", "sentiment", "transformer", 2),
    ("02_bilstm_cnn_concat_dense.yaml", "animal", "concat", 2),
    ("03_vit_minilm_finetune.yaml", "animal", "concat", 1),
    ("04_bilstm_cnn_mel_lstm_attention.yaml", "animal", "attention", 2),
    ("05_bow_efficientnet_weighted_sum.yaml", "animal", "weighted_sum", 1),
]


def load_table_script() -> ModuleType:
    """examples/make_example_table.py as a module (examples/ is not a package)."""
    spec = importlib.util.spec_from_file_location("make_example_table", EXAMPLES / "make_example_table.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("example_table")
    load_table_script().write_example_table(folder, rows=24, seed=0)
    return folder


def save_tiny_vit(folder: Path) -> None:
    """A 1-layer ViT on 16 x 16 images (4 patches), saved with its preprocessor config."""
    from transformers import ViTConfig, ViTModel

    config = ViTConfig(
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=20,
        image_size=16,
        patch_size=8,
    )
    ViTModel(config).save_pretrained(folder)
    mean_std = '"image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]'
    (folder / "preprocessor_config.json").write_text(f'{{"size": {{"height": 16, "width": 16}}, {mean_std}}}')


def test_the_table_script_writes_both_splits_with_every_class(tmp_path: Path) -> None:
    script = load_table_script()
    script.main([str(tmp_path), "--rows", "12", "--seed", "3"])
    train, test = pd.read_csv(tmp_path / "train.csv"), pd.read_csv(tmp_path / "test.csv")
    assert len(train) == 12 and len(test) == 12
    assert list(train.columns) == ["text", "image", "audio", "sentiment", "animal"]
    for frame in (train, test):
        for column, classes in LABELS.items():
            assert sorted(frame[column].unique()) == classes
        assert all((tmp_path / p).is_file() for p in [*frame["image"], *frame["audio"]])
    from PIL import Image

    with Image.open(tmp_path / train["image"][0]) as image:
        assert image.size == (32, 32) and image.mode == "RGB"
    first = (tmp_path / "train.csv").read_bytes()
    script.main([str(tmp_path), "--rows", "12", "--seed", "3"])
    assert (tmp_path / "train.csv").read_bytes() == first  # the same seed writes the same table


def test_the_table_script_refuses_too_few_rows(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"--rows 5 is too small; use at least 12"):
        load_table_script().write_example_table(tmp_path, rows=5)
    with pytest.raises(SystemExit):
        load_table_script().main([str(tmp_path), "--rows", "5"])


def test_every_example_config_is_covered_and_documented() -> None:
    readme = (EXAMPLES / "README.md").read_text(encoding="utf-8")
    assert sorted(p.name for p in EXAMPLES.glob("*.yaml")) == [case[0] for case in CASES]
    for name, *_ in CASES:
        text = (EXAMPLES / name).read_text(encoding="utf-8")
        assert text.startswith("# Example "), name
        assert f"--config examples/{name}" in text and f"examples/{name}" in readme, name


def example_config(name: str, epochs: int, tmp_path: Path) -> Config:
    """The example config, validated, with a short run (and a tiny local ViT for example 3)."""
    config = Config.from_yaml(EXAMPLES / name)
    config.training.epochs = epochs
    config.training.batch_size = 8
    for column in config.media_columns().values():
        assert column.encoder is not None
        if column.encoder.name == "hf_image":
            assert column.encoder.options["model"] == "google/vit-base-patch16-224-in21k"
            save_tiny_vit(tmp_path / "vit")
            column.encoder.options["model"] = str(tmp_path / "vit")
    return config


@pytest.mark.parametrize(("name", "label", "fusion", "epochs"), CASES, ids=[c[0][:2] for c in CASES])
def test_example_trains_saves_and_predicts(
    name: str, label: str, fusion: str, epochs: int, table: Path, tmp_path: Path
) -> None:
    config = example_config(name, epochs, tmp_path)
    assert config.label.column == label and config.fusion.name == fusion
    out = tmp_path / "model"
    omnifuse.train(config, train=table / "train.csv", test=table / "test.csv", out=out, progress=False)

    metrics = json.loads((out / "metrics.json").read_text())
    assert 0.0 <= metrics["accuracy"] <= 1.0 and "macro_f1" in metrics
    assert sorted(metrics["per_class"]) == LABELS[label]
    assert all("recall" in scores and "f1" in scores for scores in metrics["per_class"].values())
    assert (out / "report.md").is_file()

    predictor = omnifuse.load(out)
    rows = pd.read_csv(table / "test.csv").drop(columns=list(LABELS))
    predictions = predictor.predict(rows, base_dir=table)
    assert len(predictions) == len(rows) and set(predictions) <= set(LABELS[label])
    proba = predictor.predict_proba(rows, base_dir=table)
    assert sorted(proba.columns) == LABELS[label]
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    assert list(proba.idxmax(axis=1)) == predictions


def test_example_3_keeps_its_fine_tuning_recipe() -> None:
    config = Config.from_yaml(EXAMPLES / "03_vit_minilm_finetune.yaml")
    assert config.training.lr == pytest.approx(1e-5) and config.training.patience >= 1
    encoders = {n: c.encoder for n, c in config.media_columns().items()}
    assert encoders["image"] is not None and encoders["image"].name == "hf_image"
    assert encoders["text"] is not None and encoders["text"].options["model"] == "packaged:all-MiniLM-L6-v2"

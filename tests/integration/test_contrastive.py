"""Contrastive pretraining end to end: pretrain -> save -> load -> embed, evaluate, init_from, zero-shot."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from typer.testing import CliRunner

import omnifuse
from omnifuse.cli import app
from omnifuse.config.sections import Config
from omnifuse.errors import ConfigError, DataError, ModelDirError

WORDS = {"cat": "whiskers purr", "dog": "bark fetch", "owl": "hoot night"}
PRETRAIN_YAML = """
label: {column: animal, task: contrastive}
columns:
  photo: {type: image, encoder: {name: small_cnn, size: 16, channels: 1}}
  note: {type: text, encoder: {name: bow, embed_dim: 16}}
contrastive: {columns: [note, photo], embed_dim: 16, queue_size: 16}
training: {epochs: 2, batch_size: 16, lr: 0.003}
"""
runner = CliRunner()


@pytest.fixture(scope="module")
def pretrained(table_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("pretrained")
    (folder / "pretrain.yaml").write_text(PRETRAIN_YAML)
    out = folder / "model"
    result = runner.invoke(app, ["pretrain", "--config", str(folder / "pretrain.yaml"), "--train",
                                 str(table_dir / "train.csv"), "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    return out


def test_pretrained_folder_loads_and_embeds_each_column(pretrained: Path, table_dir: Path) -> None:
    for name in ("config.yaml", "preprocessors.json", "model.safetensors", "metrics.json", "report.md",
                 "manifest.json"):
        assert (pretrained / name).is_file(), name
    assert "recall@1" in json.loads((pretrained / "metrics.json").read_text())
    predictor = omnifuse.load(pretrained)
    assert predictor.embedding_columns == {"note": "text", "photo": "image"}
    test = pd.read_csv(table_dir / "test.csv")
    photos = predictor.embed(test[["photo"]], base_dir=table_dir, column="photo")  # only that column
    notes = predictor.embed(test[["note"]], column="note")
    assert photos.shape == notes.shape == (len(test), 16)
    assert np.allclose(np.linalg.norm(photos, axis=1), 1.0, atol=1e-5)
    one = predictor.embed({"note": test["note"][0]}, column="note")
    assert one.shape == (16,) and np.allclose(one, notes[0], atol=1e-5)


def test_contrastive_model_errors(pretrained: Path, table_dir: Path) -> None:
    predictor = omnifuse.load(pretrained)
    with pytest.raises(DataError, match=r"pass column= one of note \(text\), photo \(image\)"):
        predictor.embed([{"note": "x"}])
    with pytest.raises(DataError, match=r"column 'sound' is not an embedding column of this model"):
        predictor.embed([{"sound": "x"}], column="sound")
    with pytest.raises(DataError, match=r"have no column 'note'"):
        predictor.embed([{"photo": "x"}], column="note")
    for call in (predictor.predict, predictor.predict_proba, predictor.explain):
        with pytest.raises(DataError, match=r"contrastive \(embedding\) model.*embed.*zero_shot.*search"):
            call([{"note": "x", "photo": "img/0_0.png"}])


def test_evaluate_writes_retrieval_metrics(pretrained: Path, table_dir: Path, tmp_path: Path) -> None:
    data = str(table_dir / "test.csv")
    result = runner.invoke(app, ["evaluate", "--model", str(pretrained), "--data", data,
                                 "--out", str(tmp_path), "--quiet"])
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    for key in ("recall@1", "recall@5", "recall@10", "mrr", "precision@10", "map", "note->photo/recall@1",
                "photo->note/mrr"):
        assert 0.0 <= metrics[key] <= 1.0, key
    assert metrics["recall@1"] == pytest.approx(
        (metrics["note->photo/recall@1"] + metrics["photo->note/recall@1"]) / 2
    )
    assert (tmp_path / "report.md").is_file()


def test_evaluate_label_gives_class_metrics_to_a_label_free_model(
    table_dir: Path, tmp_path: Path
) -> None:
    (tmp_path / "pre.yaml").write_text(PRETRAIN_YAML.replace("{column: animal, task: contrastive}",
                                                             "{task: contrastive}"))
    train = pd.read_csv(table_dir / "train.csv").drop(columns=["animal"])
    omnifuse.train(tmp_path / "pre.yaml", train=train, out=tmp_path / "model", base_dir=table_dir,
                   progress=False)
    data = str(table_dir / "test.csv")
    plain = omnifuse.evaluate(tmp_path / "model", data, tmp_path / "plain", progress=False)
    assert "precision@10" not in plain and "recall@1" in plain
    result = runner.invoke(app, ["evaluate", "--model", str(tmp_path / "model"), "--data", data,
                                 "--out", str(tmp_path / "labelled"), "--label", "animal", "--quiet"])
    assert result.exit_code == 0, result.output
    labelled = json.loads((tmp_path / "labelled" / "metrics.json").read_text())
    assert 0.0 <= labelled["precision@10"] <= 1.0 and 0.0 <= labelled["map"] <= 1.0
    assert labelled["recall@1"] == pytest.approx(plain["recall@1"])
    with pytest.raises(DataError, match=r"--label 'kind' is not a column of the table"):
        omnifuse.evaluate(tmp_path / "model", data, tmp_path / "bad", progress=False, label="kind")


def test_evaluate_label_is_refused_for_another_column_of_a_classifier(trained_dir: Path,
                                                                      table_dir: Path) -> None:
    with pytest.raises(DataError, match=r"--label 'colour': this multiclass model predicts 'animal'"):
        omnifuse.evaluate(trained_dir, table_dir / "test.csv", progress=False, label="colour")


def _finetune_config(pretrained: Path, encoder: dict[str, object]) -> Config:
    return Config.from_dict({
        "label": {"column": "animal", "task": "multiclass"},
        "columns": {"photo": {"type": "image", "encoder": {**encoder, "init_from": str(pretrained)}}},
        "fusion": "concat",
        "training": {"epochs": 1, "batch_size": 16},
    })


def test_a_frozen_init_from_encoder_is_cached_with_the_pretrained_weights(pretrained: Path) -> None:
    from omnifuse.build import make_preprocessors
    from omnifuse.contrastive.init_from import pretrained_preprocessors
    from omnifuse.training.disk_cache import state_fingerprint
    from omnifuse.training.frozen_features import _encoder_builder, frozen_fingerprint

    config = _finetune_config(pretrained, {"name": "small_cnn", "size": 16, "channels": 1,
                                           "freeze_epochs": -1})
    preprocessors = make_preprocessors(config)
    pretrained_preprocessors(config, preprocessors)
    build, _ = _encoder_builder(config, preprocessors, "photo")
    found = frozen_fingerprint(build)  # a random small_cnn would differ between seeds: None
    assert found is not None
    assert found[1] == state_fingerprint(omnifuse.load(pretrained).model.encoders["photo"])


def test_init_from_copies_the_tower_and_the_result_is_self_contained(
    pretrained: Path, table_dir: Path, tmp_path: Path
) -> None:
    from omnifuse.build import build_encoders, make_preprocessors
    from omnifuse.contrastive.init_from import init_encoder, pretrained_preprocessors

    copy = tmp_path / "pretrained_copy"
    shutil.copytree(pretrained, copy)
    config = _finetune_config(copy, {"name": "small_cnn", "size": 16, "channels": 1})
    preprocessors = make_preprocessors(config)
    assert pretrained_preprocessors(config, preprocessors) == {"photo"}
    tower = omnifuse.load(copy).model.encoders["photo"].state_dict()
    encoder = build_encoders(config, preprocessors, None, init_encoder)["photo"]
    assert all(torch.equal(v, tower[k]) for k, v in encoder.state_dict().items())
    fresh = build_encoders(config, preprocessors, None)["photo"]  # no init_weights: random weights
    assert not all(torch.equal(v, tower[k]) for k, v in fresh.state_dict().items())
    out = tmp_path / "finetuned"
    omnifuse.train(config, train=table_dir / "train.csv", out=out, progress=False)
    shutil.rmtree(copy)  # the fine-tuned folder must not need it
    predictor = omnifuse.load(out)
    assert len(predictor.predict(table_dir / "test.csv")) == 24


def _build(config: Config) -> None:
    from omnifuse.build import build_encoders, make_preprocessors
    from omnifuse.contrastive.init_from import init_encoder, pretrained_preprocessors

    preprocessors = make_preprocessors(config)
    pretrained_preprocessors(config, preprocessors)
    build_encoders(config, preprocessors, None, init_encoder)  # as training builds them


def test_init_from_mismatches_are_clear(pretrained: Path, tmp_path: Path) -> None:
    def text_config(encoder: dict[str, object]) -> Config:
        return Config.from_dict({
            "label": {"column": "animal", "task": "multiclass"},
            "columns": {"note": {"type": "text", "encoder": {**encoder, "init_from": str(pretrained)}}},
        })

    shapes = r"has shape \(\d+, 16\) in the pretrained tower but \(\d+, 8\) here"
    with pytest.raises(ModelDirError, match=shapes):
        _build(text_config({"name": "bow", "embed_dim": 8}))
    with pytest.raises(ConfigError, match=r"'textcnn' cannot start from tower 'note'.*'bow'; set name: bow"):
        _build(text_config({"name": "textcnn"}))
    with pytest.raises(ConfigError, match=r"encoder 'small_cnn' cannot start from tower 'note'"):
        _build(_finetune_config(pretrained, {"name": "small_cnn", "init_column": "note"}))
    with pytest.raises(ConfigError, match=r"has no tower 'audio' \(its towers: note, photo\)"):
        _build(_finetune_config(pretrained, {"name": "small_cnn", "init_column": "audio"}))
    with pytest.raises(ModelDirError, match=r"photo\.encoder\.init_from: model folder .* does not exist"):
        _build(_finetune_config(tmp_path / "nowhere", {"name": "small_cnn"}))


def test_validate_reads_an_init_from_tower_as_training_does(pretrained: Path, table_dir: Path) -> None:
    from omnifuse.workflows.table_checks import validate_table

    train = table_dir / "train.csv"
    with pytest.raises(ConfigError, match=r"has no tower 'audio' \(its towers: note, photo\)"):
        validate_table(_finetune_config(pretrained, {"name": "small_cnn", "init_column": "audio"}), train)
    with pytest.raises(ConfigError, match=r"'textcnn' cannot start from tower 'note'"):
        validate_table(Config.from_dict({
            "label": {"column": "animal", "task": "multiclass"},
            "columns": {"note": {"type": "text",
                                 "encoder": {"name": "textcnn", "init_from": str(pretrained)}}},
        }), train)
    same = {"name": "small_cnn", "size": 16, "channels": 1}
    assert validate_table(_finetune_config(pretrained, same), train).ok


def test_zero_shot_python_and_cli(pretrained: Path, table_dir: Path, tmp_path: Path) -> None:
    test = pd.read_csv(table_dir / "test.csv")
    test["phrase"] = [WORDS[a] for a in test["animal"]]
    test.to_csv(table_dir / "test_phrases.csv", index=False)
    classes = list(WORDS.values())
    frame = omnifuse.zero_shot(pretrained, test, "photo", classes, "{}", base_dir=table_dir)
    assert list(frame.columns) == ["prediction", *[f"score_{c}" for c in classes]]
    scores = frame[[f"score_{c}" for c in classes]].to_numpy()
    assert [classes[i] for i in scores.argmax(axis=1)] == list(frame["prediction"])
    out = tmp_path / "zs.csv"
    result = runner.invoke(app, ["zero-shot", "--model", str(pretrained), "--data",
                                 str(table_dir / "test_phrases.csv"), "--column", "photo",
                                 "--classes", ",".join(classes), "--label", "phrase", "--out", str(out)])
    assert result.exit_code == 0, result.output
    written = pd.read_csv(out)
    accuracy = json.loads((tmp_path / "zs_metrics.json").read_text())["accuracy"]
    assert accuracy == pytest.approx(float((written["prediction"] == test["phrase"]).mean()))


def test_zero_shot_errors(pretrained: Path) -> None:
    rows = [{"photo": "img/0_0.png", "note": "x"}]
    with pytest.raises(DataError, match=r"the class list is empty"):
        omnifuse.zero_shot(pretrained, rows, "photo", [" ", ""])
    with pytest.raises(DataError, match=r"column 'sound' is not a tower of this model"):
        omnifuse.zero_shot(pretrained, rows, "sound", ["a"])
    with pytest.raises(DataError, match=r"has no text tower besides 'note'"):
        omnifuse.zero_shot(pretrained, rows, "note", ["a"])
    with pytest.raises(DataError, match=r"template 'a photo' has no '\{\}'"):
        omnifuse.zero_shot(pretrained, rows, "photo", ["a"], "a photo")


def test_init_config_contrastive(table_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "c.yaml"
    result = runner.invoke(app, ["init-config", "--train", str(table_dir / "train.csv"), "--task",
                                 "contrastive", "--columns", "photo,note", "--out", str(out)])
    assert result.exit_code == 0, result.output
    config = Config.from_yaml(out)
    assert config.label.task == "contrastive" and config.label.column == ""
    assert config.contrastive is not None and config.contrastive.columns == ["note", "photo"]
    assert config.columns["photo"].encoder is not None and config.columns["photo"].encoder.name == "small_cnn"
    assert "omnifuse pretrain --config" in result.output
    labelled = runner.invoke(app, ["init-config", "--train", str(table_dir / "train.csv"), "--task",
                                   "contrastive", "--columns", "photo,weight", "--label", "animal",
                                   "--out", str(tmp_path / "l.yaml")])
    assert labelled.exit_code == 0, labelled.output
    config = Config.from_yaml(tmp_path / "l.yaml")
    assert config.label.column == "animal" and config.contrastive is not None
    assert config.contrastive.columns == ["photo", "tabular"]
    missing = runner.invoke(app, ["init-config", "--train", str(table_dir / "train.csv"), "--out",
                                  str(tmp_path / "x.yaml")])
    assert missing.exit_code == 2 and "--label is required" in missing.output
    one = runner.invoke(app, ["init-config", "--train", str(table_dir / "train.csv"), "--task", "contrastive",
                              "--columns", "photo", "--out", str(tmp_path / "y.yaml")])
    assert one.exit_code == 2 and "two or more columns" in one.output


def test_pretrain_refuses_a_classification_config(table_dir: Path, tmp_path: Path) -> None:
    from omnifuse.cli import main

    with pytest.raises(SystemExit) as exit_info:
        import sys

        argv = sys.argv
        sys.argv = ["omnifuse", "pretrain", "--config", str(table_dir / "config.yaml"), "--train",
                    str(table_dir / "train.csv"), "--out", str(tmp_path / "m")]
        try:
            main()
        finally:
            sys.argv = argv
    assert exit_info.value.code == 2


def test_contrastive_training_augments_its_from_scratch_towers(
    table_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """augment: auto reaches contrastive towers: training batches of the image tower are changed."""
    from omnifuse.training import loop

    seen: list[tuple[list[str], bool]] = []
    original = loop.augment_batch

    def spy(inputs: dict[str, dict[str, torch.Tensor]], pipelines: Any, generator: torch.Generator) -> Any:
        out = original(inputs, pipelines, generator)
        seen.append((sorted(pipelines), not torch.equal(out["photo"]["pixels"], inputs["photo"]["pixels"])))
        return out

    monkeypatch.setattr(loop, "augment_batch", spy)
    config = Config.from_dict(yaml.safe_load(PRETRAIN_YAML) | {"training": {"epochs": 1, "batch_size": 16}})
    assert config.columns["photo"].augment == "auto"
    omnifuse.train(config, train=table_dir / "train.csv", out=tmp_path / "m", progress=False)
    assert seen and all(names == ["photo"] for names, _ in seen)  # bow text has no augmentation
    assert any(changed for _, changed in seen)

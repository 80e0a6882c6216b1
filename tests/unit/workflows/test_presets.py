"""Preset resolution: only what the user left at its default changes; fast caps, best plans members."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from omnifuse.config.sections import ComponentConfig, Config
from omnifuse.data.io import read_table
from omnifuse.encoders.base import ENCODERS
from omnifuse.errors import ConfigError
from omnifuse.workflows import init_config
from omnifuse.workflows.presets import BEST_EPOCHS, BEST_MEMBERS, FAST_EPOCHS, FAST_PATIENCE, resolve_preset

BASE: dict[str, Any] = {
    "label": {"column": "y", "task": "multiclass"},
    "columns": {"review": {"type": "text"}, "photo": {"type": "image"}, "age": {"type": "numeric"}},
}


def _config(**sections: Any) -> Config:
    raw = copy.deepcopy(BASE)
    raw.update(sections)
    return Config.from_dict(raw)


def _table(folder: Path, side: int) -> Any:
    """A 4-row table whose photos are side x side PNGs."""
    (folder / "img").mkdir(parents=True, exist_ok=True)
    for i in range(4):
        Image.fromarray(np.full((side, side), 40 * i, dtype=np.uint8)).save(folder / f"img/{i}.png")
    frame = pd.DataFrame({"review": ["good", "bad", "fine", "meh"],
                          "photo": [f"img/{i}.png" for i in range(4)],
                          "age": [1.0, 2.0, 3.0, 4.0], "y": ["a", "b", "a", "b"]})
    frame.to_csv(folder / "train.csv", index=False)
    return read_table(folder / "train.csv")


def test_medium_is_the_config_as_written() -> None:
    cfg = _config()
    plan = resolve_preset(cfg)
    assert plan.preset == "medium" and plan.config == cfg and plan.members == [] and plan.notes == []


def test_fast_caps_the_default_epochs_and_patience() -> None:
    plan = resolve_preset(_config(), "fast")
    assert plan.config.training.epochs == FAST_EPOCHS < 40
    assert plan.config.training.patience == FAST_PATIENCE
    assert plan.config.preset == "fast" and plan.members == []
    assert plan.config.baseline.enabled  # the baselines stay on
    assert plan.config.columns == _config().columns  # encoders untouched
    assert "training.epochs: 40 -> 10" in plan.notes


def test_presets_keep_what_the_user_set() -> None:
    cfg = _config(training={"epochs": 3, "patience": 7, "lr": 0.01})
    fast = resolve_preset(cfg, "fast")
    assert (fast.config.training.epochs, fast.config.training.patience) == (3, 7)
    assert fast.config.training.lr == 0.01
    assert any(n.startswith("kept training.patience: 7") for n in fast.notes)
    best = resolve_preset(cfg, "best")
    assert (best.config.training.epochs, best.config.training.patience) == (3, 7)
    assert {m.config.training.epochs for m in best.members} == {3}


def test_the_config_field_picks_the_preset_and_the_argument_overrides_it() -> None:
    cfg = _config(preset="fast")
    assert resolve_preset(cfg).config.training.epochs == FAST_EPOCHS
    assert resolve_preset(cfg, "medium").config.training.epochs == 40


def test_best_plans_fusions_times_seeds() -> None:
    plan = resolve_preset(_config(training={"seed": 7}), "best")
    assert plan.config.training.epochs == BEST_EPOCHS
    names = [m.name for m in plan.members]
    assert len(names) == BEST_MEMBERS
    assert names[:3] == ["late-seed7", "concat-seed7", "attention-seed7"]  # every fusion before a 2nd seed
    assert names[3:] == ["late-seed8", "concat-seed8", "attention-seed8"]
    assert all(m.config.preset == "medium" for m in plan.members)  # a member is one model
    assert plan.members[1].config.fusion == ComponentConfig(name="concat")
    assert plan.members[0].config.fusion == ComponentConfig(name="late", options={"combine": "mean"})


def test_best_keeps_a_fusion_the_user_set_and_varies_the_seed() -> None:
    plan = resolve_preset(_config(fusion={"name": "gated", "dim": 32}), "best")
    assert {m.config.fusion.name for m in plan.members} == {"gated"}
    assert [m.config.training.seed for m in plan.members] == list(range(BEST_MEMBERS))
    assert plan.members[0].config.fusion.options == {"dim": 32}


def test_best_switches_default_encoders_to_installed_pretrained_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(init_config, "_installed", lambda module: True)
    plan = resolve_preset(_config(), "best", _table(tmp_path, 96))
    text, image = plan.config.columns["review"].encoder, plan.config.columns["photo"].encoder
    assert text is not None and text.name == "hf_text"
    assert text.options["model"] == init_config.PACKAGED_MINILM
    assert image is not None and image.name == "efficientnet_lite0"
    assert (text.freeze_epochs, image.freeze_epochs) == (-1, -1)  # frozen probes, as init-config writes them
    assert text.lr_mult == ENCODERS.get("hf_text").lr_mult
    assert image.lr_mult == ENCODERS.get("efficientnet_lite0").lr_mult
    assert all(m.config.columns == plan.config.columns for m in plan.members)
    assert any(n.startswith("columns.photo.encoder: small_cnn -> efficientnet_lite0") for n in plan.notes)
    words = plan.config.columns["review_words"]  # the lexical companion, as init-config writes it
    assert (words.source, words.encoder) == ("review", ComponentConfig("tfidf"))
    assert plan.config.input_names() == ["photo", "review", "review_words", "tabular"]
    assert any(n.startswith("columns.review_words: the text of 'review' read a second") for n in plan.notes)


def test_best_adds_no_companion_where_the_config_reads_the_column_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(init_config, "_installed", lambda module: True)
    mine = {"type": "text", "encoder": "bow", "source": "review"}
    paired = _config(columns={**BASE["columns"], "mine": mine})
    plan = resolve_preset(paired, "best", _table(tmp_path, 96))
    review = plan.config.columns["review"].encoder
    assert review is not None and review.name == "hf_text"
    assert set(plan.config.columns) == {"review", "photo", "age", "mine"}


def test_best_keeps_scratch_encoders_for_tiny_images_missing_packages_and_user_choices(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(init_config, "_installed", lambda module: True)
    tiny = resolve_preset(_config(), "best", _table(tmp_path / "tiny", 16))
    assert tiny.config.columns["photo"].encoder == ComponentConfig(name="small_cnn")
    chosen = _config(columns={**BASE["columns"], "review": {"type": "text", "encoder": "bow"}})
    kept = resolve_preset(chosen, "best", _table(tmp_path / "big", 96))
    assert kept.config.columns["review"].encoder == ComponentConfig(name="bow")
    assert "kept columns.review.encoder: bow (set in the config)" in kept.notes
    monkeypatch.setattr(init_config, "_installed", lambda module: False)
    bare = resolve_preset(_config(), "best", _table(tmp_path / "bare", 96))
    assert bare.config.columns == _config().columns


def test_an_unknown_preset_is_refused() -> None:
    with pytest.raises(ConfigError, match="preset: 'turbo' is not one of fast, medium, best"):
        resolve_preset(_config(), "turbo")
    with pytest.raises(ConfigError, match="preset: 'turbo' is not one of 'fast', 'medium', 'best'"):
        _config(preset="turbo")


def test_best_refuses_what_it_cannot_ensemble() -> None:
    contrastive = Config.from_dict({"label": {"task": "contrastive"}, "columns": BASE["columns"]})
    with pytest.raises(ConfigError, match="contrastive pretraining embeds: use --preset medium"):
        resolve_preset(contrastive, "best")
    with pytest.raises(ConfigError, match="set data.streaming: false"):
        resolve_preset(_config(data={"streaming": True}), "best")
    with pytest.raises(ConfigError, match="set training.devices: 1"):
        resolve_preset(_config(training={"devices": 2}), "best")

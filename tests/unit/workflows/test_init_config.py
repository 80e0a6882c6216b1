"""init-config: the inferred starter Config and its commented YAML, which must round-trip."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import typer
import yaml
from PIL import Image

from omnifuse.cli import app
from omnifuse.config import parsing as typed
from omnifuse.config.sections import ComponentConfig, Config, TrainingConfig, _unflatten
from omnifuse.data.io import read_table
from omnifuse.workflows import init_config
from omnifuse.workflows.init_config import build_config, field_help, render_yaml

N = 12


def _table(tmp_path: Path, image_size: tuple[int, int] = (8, 8), mode: str = "L") -> Path:
    rng = np.random.default_rng(0)
    (tmp_path / "img").mkdir()
    (tmp_path / "audio").mkdir()
    rows = []
    for i in range(N):
        shape = (image_size[1], image_size[0]) + (() if mode == "L" else (3,))
        Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8), mode).save(tmp_path / f"img/{i}.png")
        sf.write(tmp_path / f"audio/{i}.wav", (0.1 * rng.standard_normal(400)).astype("float32"), 8000)
        rows.append({
            "id": f"row-{i}",
            "photo": f"img/{i}.png",
            "clip": f"audio/{i}.wav" if i % 4 else "",
            "review": f"review {i}: the parcel was {'fine' if i % 2 else 'damaged'} when it came",
            "film": f"films/{i}.mp4",
            "price": round(float(rng.normal(10, 3)), 2),
            "color": ["red", "green", "blue"][i // 3 % 3],  # mixed labels per colour: informative, not a leak
            "label": ["cat", "dog", "bird"][i % 3],
        })
    pd.DataFrame(rows).to_csv(tmp_path / "table.csv", index=False)
    return tmp_path / "table.csv"


def _validation_available() -> bool:
    try:
        importlib.import_module("omnifuse.config.checks")
        importlib.import_module("omnifuse.catalog")
    except ImportError:
        return False
    return True


def test_build_config_types_encoders_and_notes(tmp_path: Path) -> None:
    config, notes = build_config(read_table(_table(tmp_path)), "label")
    assert (config.label.column, config.label.task) == ("label", "multiclass")
    assert {n: c.type for n, c in config.columns.items()} == {
        "id": "ignore", "photo": "image", "clip": "audio", "review": "text", "film": "ignore",
        "price": "numeric", "color": "categorical", "review_words": "text",
    }
    assert config.columns["photo"].encoder == ComponentConfig(
        "small_cnn", {"size": 8, "channels": 1, "residual": True})
    assert config.columns["clip"].encoder == ComponentConfig("mfcc_stats")
    minilm = ComponentConfig("hf_text", {"model": "packaged:all-MiniLM-L6-v2"}, lr_mult=0.05,
                             freeze_epochs=-1)
    assert config.columns["review"].encoder == minilm
    assert any(n.startswith("columns.review.encoder: hf_text") and "frozen (freeze_epochs: -1)" in n
               and "lr_mult 0.05" in n for n in notes)
    assert config.columns["price"].encoder is None and config.columns["id"].encoder is None
    assert config.columns["clip"].allow_missing and not config.columns["photo"].allow_missing
    assert notes[0] == f"table: {tmp_path / 'table.csv'} (12 rows, 8 columns)"
    assert "label: multiclass: 3 distinct values: 'bird', 'cat', 'dog'" in notes
    assert "columns.photo: image: 100% of values end in .png and 12/12 sampled files exist" in notes
    assert any(n.startswith("columns.clip: audio:") and "3/12 cells are empty, so allow_missing: true" in n
               for n in notes)
    assert any(n.startswith("columns.film: video:") and n.endswith("video columns are not supported yet")
               for n in notes)
    small = "columns.photo.encoder: small_cnn: the 3 opened images are at most 64 px (8x8 L, 8x8 L, 8x8 L)"
    assert small in notes


def test_text_falls_back_to_tfidf_without_the_packaged_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(init_config, "_installed", lambda module: False)
    config, notes = build_config(read_table(_table(tmp_path)), "label")
    assert config.columns["review"].encoder == ComponentConfig("tfidf")
    assert "review_words" not in config.columns  # the companion goes with a frozen sentence encoder only
    assert any(n.startswith("columns.review.encoder: tfidf") for n in notes)


def test_a_frozen_sentence_encoder_gets_a_tfidf_companion_on_the_same_column(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(init_config, "_installed", lambda module: True)
    config, notes = build_config(read_table(_table(tmp_path)), "label")
    words = config.columns["review_words"]
    expected = ("text", "review", ComponentConfig("tfidf"))
    assert (words.type, words.source, words.encoder) == expected
    assert words.allow_missing == config.columns["review"].allow_missing
    assert "review_words" not in config.table_columns()
    assert any(n.startswith("columns.review_words: the text of 'review' read a second time") for n in notes)
    text = render_yaml(config, notes)
    assert "  review_words:" in text and "    source: review  #" in text
    assert Config.from_dict(yaml.safe_load(text)).columns["review_words"].source == "review"


def test_the_companion_name_avoids_taken_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(init_config, "_installed", lambda module: True)
    table = read_table(_table(tmp_path))
    table.frame["review_words"] = "x"
    config, _ = build_config(table, "label")
    assert config.columns["review_words2"].source == "review"


def test_large_images_get_efficientnet_or_small_cnn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    table = read_table(_table(tmp_path, image_size=(100, 70), mode="RGB"))
    monkeypatch.setattr(init_config, "_installed", lambda module: True)
    config, notes = build_config(table, "label")
    frozen = ComponentConfig("efficientnet_lite0", lr_mult=0.05, freeze_epochs=-1)
    assert config.columns["photo"].encoder == frozen
    assert any("larger than 64 px (100x70 RGB" in n for n in notes)
    monkeypatch.setattr(init_config, "_installed", lambda module: False)
    config, notes = build_config(table, "label")
    assert config.columns["photo"].encoder == ComponentConfig("small_cnn")
    assert any(n.endswith("and efficientnet_lite_pytorch is not installed") for n in notes)


def test_medium_grayscale_images_and_unreadable_images(tmp_path: Path) -> None:
    config, _ = build_config(read_table(_table(tmp_path, image_size=(48, 40))), "label")
    assert config.columns["photo"].encoder == ComponentConfig(
        "small_cnn", {"size": 48, "channels": 1, "residual": True})
    frame = pd.DataFrame({"pic": [f"missing/{i}.png" for i in range(4)], "y": [0, 1, 0, 1]})
    config, notes = build_config(read_table(frame, base_dir=tmp_path), "y")
    assert config.columns["pic"].encoder is not None
    assert any("no sampled image could be opened" in n for n in notes)


def _round_trip(
    config: Config, notes: list[str], monkeypatch: pytest.MonkeyPatch
) -> tuple[str, dict[str, Any]]:
    text = render_yaml(config, notes)
    raw = yaml.safe_load(text)
    problems: list[str] = []
    assert typed.from_dict(Config, _unflatten(raw), "", problems) == config
    assert problems == []
    if not _validation_available():  # the validation module may not be written yet
        monkeypatch.setattr(Config, "problems", lambda self: [])
    assert Config.from_dict(raw) == config
    return text, raw


def test_yaml_round_trips(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config, notes = build_config(read_table(_table(tmp_path)), "label")
    _, raw = _round_trip(config, notes, monkeypatch)
    assert raw["columns"]["photo"]["encoder"] == {
        "name": "small_cnn", "size": 8, "channels": 1, "residual": True}
    assert raw["label"] == {"column": "label", "task": "multiclass", "delimiter": "|"}


def test_yaml_round_trips_awkward_names_and_changed_values(monkeypatch: pytest.MonkeyPatch) -> None:
    frame = pd.DataFrame({"yes": [1.5, 2.5, 3.5], "a: b #c": ["x", "y", "x"], "null": [1, 2, 3],
                          "y": ["p", "q", "p"]})
    config, notes = build_config(read_table(frame), "y")
    config.training.devices = "0,1"
    config.training.lr = 3e-5
    config.fusion = ComponentConfig("concat", lr_mult=0.5, freeze_epochs=2)
    text, raw = _round_trip(config, notes, monkeypatch)
    assert list(raw["columns"]) == ["yes", "a: b #c", "null"]
    assert "# lr_mult" not in text.split("fusion:")[1].split("head:")[0]


def test_yaml_has_a_comment_on_every_key(tmp_path: Path) -> None:
    config, notes = build_config(read_table(_table(tmp_path)), "label")
    text = render_yaml(config, notes)
    assert text.startswith("# omnifuse configuration, written by `omnifuse init-config`.")
    assert "#   columns.review: text:" in text
    assert "# type: one of text, image, audio, video, numeric, categorical, ignore" in text
    assert "  photo:  # image: 100% of values end in .png and 12/12 sampled files exist\n" in text
    assert "  task: multiclass  # multiclass: 3 distinct values:" in text
    assert "  name: late  # late | concat | weighted_sum | attention | ... (omnifuse list)\n" in text
    assert "  grad_clip: 1.0  # max gradient norm; 0 disables clipping\n" in text
    named = {c.split("`")[0].split()[0] for c in text.split("`omnifuse ")[1:]}  # commands the comments name
    assert named and named <= {c.name for c in typer.main.get_command(app).commands.values()}, named
    assert "  on_bad_row: error  # error | skip; skip:" in text
    assert "  lr: 0.002  # peak learning rate of AdamW\n" in text
    for section in ("head:", "data:", "training:"):
        body = text.split(f"\n{section}\n")[1].split("\n\n")[0].splitlines()
        assert body and all("  # " in line for line in body), section


def test_field_help_reads_config_py_comments() -> None:
    help_ = field_help(TrainingConfig)
    assert help_["accumulate"] == "gradient accumulation steps"
    assert help_["epochs"] == "maximum number of passes over the training rows"  # from the fallback
    assert set(help_) == {f for f in TrainingConfig.__dataclass_fields__}


def _leaky_table() -> pd.DataFrame:
    labels = [["coat", "shirt", "bag"][i % 3] for i in range(60)]
    return pd.DataFrame({
        "caption": [f"a photo of a {y}" for y in labels],  # names the label: a leak
        "sku": [f"SKU-{i:04d}" for i in range(58)] + ["SKU-0000", "SKU-0001"],  # 58/60 distinct: an id
        "shop": ["north"] * 60,  # one value
        "size": [["S", "M", "L"][i // 3 % 3] for i in range(60)],  # several labels per value: kept
        "label": labels,
    })


def test_leaks_ids_and_constants_are_written_as_ignore_with_the_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config, notes = build_config(read_table(_leaky_table()), "label")
    assert {n: c.type for n, c in config.columns.items()} == {
        "caption": "ignore", "sku": "ignore", "shop": "ignore", "size": "categorical",
    }
    assert ("columns.caption: ignore: column 'caption' predicts the label exactly in 100% of training rows: "
            "a leak? set `type: categorical` to use it anyway") in notes
    assert ("columns.sku: ignore: column 'sku' has 58 distinct values in 60 non-empty training rows (96.6%): "
            "a row id? set `type: text` to use it anyway") in notes
    shop = "columns.shop: ignore: column 'shop' holds the single value 'north'"
    assert any(n.startswith(shop) for n in notes)
    text, raw = _round_trip(config, notes, monkeypatch)
    assert raw["columns"]["caption"] == {"type": "ignore", "allow_missing": False}
    assert ("  caption:  # ignore: column 'caption' predicts the label exactly in 100% of training rows: "
            "a leak? set `type: categorical` to use it anyway\n    type: ignore\n") in text
    raw["columns"]["caption"]["type"] = "categorical"  # the user sets it back
    assert Config.from_dict(raw).columns["caption"].type == "categorical"


def test_pretrained_encoders_are_written_frozen_with_a_small_lr_mult(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A probe on frozen features, a gentle fine-tune once unfrozen; from-scratch encoders train fully."""
    monkeypatch.setattr(init_config, "_installed", lambda module: True)
    config, notes = build_config(read_table(_table(tmp_path, image_size=(100, 70), mode="RGB")), "label")
    schedules = {n: (c.encoder.freeze_epochs, c.encoder.lr_mult)
                 for n, c in config.columns.items() if c.encoder is not None}
    assert schedules == {"photo": (-1, 0.05), "review": (-1, 0.05), "clip": (0, 1.0),
                         "review_words": (0, 1.0)}
    note = next(n for n in notes if n.startswith("columns.review.encoder: hf_text"))
    assert "frozen (freeze_epochs: -1)" in note and "lr_mult 0.05" in note
    text = render_yaml(config, notes)
    review = text.split("  review:")[1].split("allow_missing")[0]
    assert "      lr_mult: 0.05\n" in review and "      freeze_epochs: -1\n" in review
    assert "# lr_mult" not in review  # written as values, not as commented defaults
    reread = Config.from_dict(yaml.safe_load(text))
    assert reread.columns["review"].encoder == config.columns["review"].encoder


def test_with_spec_schedule_follows_the_registry_entry() -> None:
    encoder, note = init_config.with_spec_schedule(ComponentConfig("small_cnn", {"size": 28}), "why")
    assert (encoder.freeze_epochs, encoder.lr_mult, encoder.options, note) == (0, 1.0, {"size": 28}, "why")
    with pytest.raises(AssertionError, match="registered encoders, not 'no_such'"):
        init_config.with_spec_schedule(ComponentConfig("no_such"), "why")

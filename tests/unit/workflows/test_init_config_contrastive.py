"""init-config --task contrastive: the measured defaults (fixed schedule and temperature, frozen
pretrained towers)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import yaml
from PIL import Image

from omnifuse.config.sections import Config
from omnifuse.data.io import read_table
from omnifuse.workflows import init_config
from omnifuse.workflows.init_config import (
    CONTRASTIVE_EPOCHS,
    CONTRASTIVE_TEMPERATURE,
    build_contrastive_config,
    render_yaml,
)


def _table(tmp_path: Path, rows: int = 12) -> Path:
    rng = np.random.default_rng(0)
    (tmp_path / "img").mkdir()
    (tmp_path / "audio").mkdir()
    records = []
    for i in range(rows):
        Image.fromarray(rng.integers(0, 255, (12, 12), dtype=np.uint8), "L").save(tmp_path / f"img/{i}.png")
        sf.write(tmp_path / f"audio/{i}.wav", (0.1 * rng.standard_normal(400)).astype("float32"), 8000)
        records.append({"photo": f"img/{i}.png", "clip": f"audio/{i}.wav",
                        "note": f"review {i}: the parcel was {'fine' if i % 2 else 'damaged'} when it came",
                        "label": i % 2})
    pd.DataFrame(records).to_csv(tmp_path / "table.csv", index=False)
    return tmp_path / "table.csv"


def test_contrastive_defaults_fix_the_schedule_and_the_temperature(tmp_path: Path) -> None:
    config, _ = build_contrastive_config(read_table(_table(tmp_path)), ["photo", "clip"], None)
    training = config.training
    assert training.epochs == CONTRASTIVE_EPOCHS and training.patience == CONTRASTIVE_EPOCHS
    assert training.restore_best is False and training.batch_size == 64
    # knobs of classifiers only: written as off, so the YAML does not suggest they act
    assert (training.modality_dropout, training.label_smoothing, training.aux_loss) == (0.0, 0.0, 0.0)
    section = config.contrastive
    assert section is not None and section.columns == ["clip", "photo"]
    assert (section.temperature, section.learn_temperature) == (CONTRASTIVE_TEMPERATURE, False)
    assert CONTRASTIVE_TEMPERATURE == 0.2
    assert {n: c.augment for n, c in config.columns.items()} == {"photo": "auto", "clip": "auto"}
    written = Config.from_dict(yaml.safe_load(render_yaml(config, [])))
    assert written == config  # what the YAML says is what trains


def test_pretrained_towers_are_frozen_so_their_features_are_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = read_table(_table(tmp_path))
    monkeypatch.setattr(init_config, "_installed", lambda module: True)  # the packaged MiniLM
    config, notes = build_contrastive_config(table, ["photo", "note"], "label")
    note, photo = config.columns["note"].encoder, config.columns["photo"].encoder
    assert note is not None and note.name == "hf_text" and note.freeze_epochs == -1
    assert photo is not None and photo.name == "small_cnn" and photo.freeze_epochs == 0  # from scratch
    frozen = [n for n in notes if n.startswith("columns.note.encoder") and "freeze_epochs: -1" in n]
    assert len(frozen) == 1 and "frozen (freeze_epochs: -1)" in frozen[0]  # said once, by its EncoderSpec
    assert "freeze_epochs: -1" in render_yaml(config, notes)
    monkeypatch.setattr(init_config, "_installed", lambda module: False)
    config, notes = build_contrastive_config(table, ["photo", "note"], None)
    note = config.columns["note"].encoder
    assert note is not None and note.name == "tfidf" and note.freeze_epochs == 0  # trains from scratch
    assert not any("freeze_epochs" in n for n in notes)

"""training.group_by_length end to end: a text table trains on batches of similar length, says so in the
log, and the padded / real ratio lands in train_log.csv."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from rich.console import Console

import omnifuse
from omnifuse.config.sections import Config

CONFIG = """
label: {column: label, task: multiclass}
columns:
  review: {type: text, encoder: {name: bow, embed_dim: 8}}
fusion: concat
head: {hidden_dim: 8}
training: {epochs: 6, batch_size: 16, lr: 0.03, accelerator: cpu}
baseline: {enabled: false}
"""
WORDS = np.array(["good", "great", "fine", "bad", "awful", "poor", "odd", "meh", "so", "the", "a", "this"])


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    texts = [" ".join([WORDS[label * 3], *rng.choice(WORDS[6:], rng.integers(0, 60))]) for label in y]
    return pd.DataFrame({"review": texts, "label": np.array(["pos", "neg"])[y]})


@pytest.mark.parametrize("grouped", [True, False])
def test_training_reports_and_logs_the_padding(tmp_path: Path, grouped: bool) -> None:
    config = Config.from_dict(yaml.safe_load(CONFIG) | {"training": yaml.safe_load(CONFIG)["training"]
                                                        | {"group_by_length": grouped}})
    console = Console(record=True, width=200)
    omnifuse.train(config, train=_frame(400, 0), valid=_frame(80, 1), out=tmp_path / "m", progress=False,
                   console=console)
    text = console.export_text()
    log = pd.read_csv(tmp_path / "m" / "train_log.csv")
    ratio = log["padded_review_input_ids"]
    assert len(ratio) == 6 and (ratio >= 1.0).all()
    if grouped:
        assert "Padded / real positions per batch: review.input_ids" in text and "random batches:" in text
        assert ratio.max() < 1.2  # 400 rows of 1 to 61 words: random batches of 16 pad to about 1.8x
    else:
        assert "training.group_by_length is off" in text
        assert ratio.min() > 1.4
    predictor = omnifuse.load(tmp_path / "m")
    test = _frame(60, 2)
    assert float(np.mean(np.asarray(predictor.predict(test)) == test["label"].to_numpy())) > 0.8

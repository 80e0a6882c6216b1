"""Length grouping end to end: a text table trains on batches of similar length
(training.group_by_length), says so in the log, the padded / real ratio lands in train_log.csv, and batch
prediction runs longest first."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from rich.console import Console

import omnifuse
from omnifuse.config.sections import Config
from omnifuse.data.collate import Batch, Example
from omnifuse.inference import predictor as predictor_module

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


def test_batch_prediction_runs_longest_first_and_answers_in_row_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = Config.from_dict(yaml.safe_load(CONFIG))
    omnifuse.train(config, train=_frame(200, 0), valid=_frame(40, 1), out=tmp_path / "m", progress=False,
                   console=Console(quiet=True))
    predictor = omnifuse.load(tmp_path / "m")
    rows = _frame(150, 3)  # more rows than one batch of 64
    one_by_one = torch.cat([predictor.logits(rows.iloc[[i]]) for i in range(len(rows))])
    seen: list[int] = []
    real_collate = predictor_module.batches

    def recording(examples: list[Example], size: int) -> Iterator[Batch]:
        for batch in real_collate(examples, size):
            seen.append(int(batch.inputs["review"]["input_ids"].shape[1]))
            yield batch

    monkeypatch.setattr(predictor_module, "batches", recording)
    batched = predictor.logits(rows)
    torch.testing.assert_close(batched, one_by_one, rtol=1e-4, atol=1e-5)  # in the rows' order
    assert seen == sorted(seen, reverse=True) and len(seen) == 3  # longest batch first, each padded less
    assert seen[-1] < seen[0] / 2  # random batches of these rows would all pad to about 60 words

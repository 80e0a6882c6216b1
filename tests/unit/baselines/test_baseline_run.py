"""run_baselines on small in-memory tables: results, determinism, sampling, skip notes, embeddings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from omnifuse.api import prepare_data
from omnifuse.baselines.run import NO_CONTRASTIVE, STREAMED, VALID_NOTE, run_baselines
from omnifuse.build import make_task_for
from omnifuse.config.sections import Config
from omnifuse.workflows.prepare import PreparedData, RunContext

WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "red", "blue", "green", "cat", "dog", "owl"]


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    label = rng.integers(0, 3, size=n)
    return pd.DataFrame({
        "note": [f"{['red', 'blue', 'green'][rng.integers(3)]} {['cat', 'dog', 'owl'][rng.integers(3)]}"
                 for _ in range(n)],
        "x": rng.normal(size=n),
        "key": [f"k{v}" for v in label],  # determines the label exactly
        "y": [f"c{v}" for v in label],
    })


def _config(**columns: Any) -> Config:
    raw = {"label": {"column": "y", "task": "multiclass"},
           "columns": {"note": {"type": "text", "encoder": "bow"}, "x": {"type": "numeric"},
                       "key": {"type": "categorical"}, **columns}}
    return Config.from_dict(raw)


def _prepare(cfg: Config, tmp_path: Path, n: int = 60, test: bool = True) -> PreparedData:
    ctx = RunContext(tmp_path, Console(quiet=True), False)
    tmp_path.mkdir(parents=True, exist_ok=True)
    return prepare_data(cfg, _frame(n, 0), None, _frame(30, 1) if test else None, ctx)


def _run(cfg: Config, data: PreparedData, split: str = "test") -> dict[str, Any]:
    return run_baselines(cfg, data.task, data.preprocessors, data.tables, data.examples, split)


def _by_name(baselines: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in baselines["results"]}


def test_a_perfectly_predictive_column_scores_1_and_runs_repeat_exactly(tmp_path: Path) -> None:
    cfg = _config()
    data = _prepare(cfg, tmp_path)
    first, second = _run(cfg, data), _run(cfg, data)
    results = _by_name(first)
    assert list(results) == ["note (TF-IDF, logistic)", "tabular (raw columns, logistic)",
                             "tabular (raw columns, gradient boosting)", "fused (linear)"]
    assert results["tabular (raw columns, logistic)"]["accuracy"] == 1.0
    assert results["tabular (raw columns, gradient boosting)"]["accuracy"] == 1.0
    assert results["note (TF-IDF, logistic)"]["accuracy"] < 0.8  # random words: no signal
    assert first["best"] in ("tabular (raw columns, logistic)", "fused (linear)")
    assert first["rows"] == {"train": 48, "valid": 12, "test": 30, "train_total": 48}
    timing = ("features_s", "fit_s")
    strip = [{k: v for k, v in r.items() if k not in timing} for r in first["results"]]
    assert strip == [{k: v for k, v in r.items() if k not in timing} for r in second["results"]]
    assert {"n", "macro_f1", "log_loss", "choice", "inputs"} <= set(results["fused (linear)"])
    assert results["fused (linear)"]["inputs"] == ["note", "tabular"]


def test_fitting_uses_at_most_max_rows_training_rows(tmp_path: Path) -> None:
    cfg = _config()
    cfg.baseline.max_rows = 20
    data = _prepare(cfg, tmp_path, n=100)
    baselines = _run(cfg, data)
    assert baselines["rows"]["train"] == 20 and baselines["rows"]["train_total"] == 80
    assert _run(cfg, data)["results"][0]["accuracy"] == baselines["results"][0]["accuracy"]


def test_a_column_without_usable_features_is_a_note_not_a_crash(tmp_path: Path) -> None:
    raw = {"label": {"column": "y", "task": "multiclass"},
           "columns": {"note": {"type": "text", "encoder": "bow"}, "x": {"type": "numeric"}}}
    cfg = Config.from_dict(raw)
    frame = _frame(40, 0).assign(x=3.0)  # a constant number: nothing to learn from
    data = prepare_data(cfg, frame, None, None, RunContext(tmp_path, Console(quiet=True), False))
    baselines = _run(cfg, data, split="valid")
    assert [r["name"] for r in baselines["results"]] == ["note (TF-IDF, logistic)"]
    assert any(n.startswith("tabular: classical features skipped (every training row has the same features")
               for n in baselines["notes"])
    assert VALID_NOTE in baselines["notes"] and baselines["split"] == "valid"


def test_contrastive_and_streamed_runs_get_a_note(tmp_path: Path) -> None:
    raw = {"label": {"task": "contrastive"},
           "columns": {"note": {"type": "text", "encoder": "bow"}, "key": {"type": "categorical"}}}
    cfg = Config.from_dict(raw)
    contrastive = run_baselines(cfg, make_task_for(cfg), {}, {}, {}, "valid")
    assert contrastive["results"] == [] and contrastive["notes"] == [NO_CONTRASTIVE]
    plain = _config()
    data = _prepare(plain, tmp_path)
    streamed = run_baselines(plain, data.task, data.preprocessors, {}, data.examples, "test")
    assert streamed["results"] == [] and streamed["notes"] == [STREAMED] and streamed["best"] is None


@pytest.fixture
def tiny_bert_dir(tmp_path: Path) -> Path:
    """A tiny random BERT with its tokenizer, loadable by path (no hub)."""
    from transformers import BertConfig, BertModel, BertTokenizer

    folder = tmp_path / "tiny-bert"
    config = BertConfig(vocab_size=len(WORDS), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=20)
    BertModel(config).save_pretrained(str(folder))
    BertTokenizer(vocab={w: i for i, w in enumerate(WORDS)}).save_pretrained(str(folder))
    return folder


def test_a_pretrained_encoder_adds_a_frozen_embedding_baseline(tiny_bert_dir: Path, tmp_path: Path) -> None:
    cfg = _config(note={"type": "text", "encoder": {"name": "hf_text", "model": str(tiny_bert_dir),
                                                    "max_length": 8}})
    data = _prepare(cfg, tmp_path / "run")
    results = _by_name(_run(cfg, data))
    embedded = results["note (hf_text embeddings, logistic)"]
    assert embedded["inputs"] == ["note"] and embedded["features"] == "hf_text embeddings"
    assert "TF-IDF + hf_text embeddings + raw columns" == results["fused (linear)"]["features"]

"""`omnifuse compare` orchestration: fusion selection, unimodal configs, the skipped-fusion path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from omnifuse.api import prepare_data
from omnifuse.config.sections import Config
from omnifuse.errors import DataError, UnknownNameError
from omnifuse.fusion.base import FUSIONS, Fusion, FusionSpec
from omnifuse.workflows.compare import (
    FALLBACK_FUSION,
    collate_rows,
    headline_metrics,
    inference_ms_per_row,
    plan_methods,
    restrict_to,
    run_compare,
    select_fusions,
    with_fusion,
)
from omnifuse.workflows.prepare import PreparedData, RunContext

WORDS = ["red apple", "blue sky", "green leaf"]


def _config(fusion: str = "concat", three: bool = False, **fusion_options: Any) -> Config:
    """Inputs 'tabular' and 'words' (and 'more', a second text column, with ``three``)."""
    text = {"type": "text", "encoder": {"name": "bow", "embed_dim": 8}}
    return Config.from_dict({
        "label": {"column": "y", "task": "multiclass"},
        "columns": {"words": text, "size": {"type": "numeric"}, "shade": {"type": "categorical"},
                    **({"more": text} if three else {})},
        "fusion": {"name": fusion, **fusion_options},
        "training": {"epochs": 1, "batch_size": 16, "patience": 1},
        "head": {"hidden_dim": 0},
        "baseline": {"enabled": False},  # off: these tests count the trained methods' rows
    })


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    return pd.DataFrame({
        "words": [f"{WORDS[c]} {rng.choice(['a', 'b'])}" for c in y],
        "size": y + rng.normal(scale=0.3, size=n),
        "shade": rng.choice(["dark", "light"], size=n),
        "y": y,
    }).assign(more=lambda f: f["words"].str.upper())


def _prepared(tmp_path: Path, cfg: Config) -> PreparedData:
    ctx = RunContext(tmp_path, Console(quiet=True), False)
    return prepare_data(cfg, _frame(30, 0), _frame(12, 1), _frame(12, 2), ctx)


@pytest.fixture
def pair_only(monkeypatch: pytest.MonkeyPatch) -> str:
    """A registered stand-in fusion that, like bilinear, refuses anything but exactly two inputs."""

    def build(options: Any, dims: dict[str, int]) -> Fusion:
        if len(dims) != 2:
            raise ValueError(f"fusion 'pair_only' takes exactly 2 inputs, got {len(dims)}")
        return FUSIONS.get("concat").build(options, dims)

    concat = FUSIONS.get("concat")
    monkeypatch.setitem(FUSIONS._entries, "pair_only", FusionSpec(concat.options, build, "test stand-in"))
    return "pair_only"


# -- fusion selection ---------------------------------------------------------------------------
def test_all_selects_every_registered_fusion() -> None:
    assert select_fusions("all") == FUSIONS.names()
    assert select_fusions(" concat , attention,concat") == ["concat", "attention"]
    assert select_fusions(["weighted_sum"]) == ["weighted_sum"]


def test_unknown_fusion_lists_the_available_ones() -> None:
    expected = r"unknown fusion\(s\) 'nope' in --fusions; available: .*concat"
    with pytest.raises(UnknownNameError, match=expected):
        select_fusions("concat,nope")
    with pytest.raises(UnknownNameError, match=r"\(none given\)"):
        select_fusions(" , ")


def test_unknown_fusion_fails_before_reading_or_training(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(UnknownNameError, match="'nope'"):
        run_compare(_config(), tmp_path / "absent.csv", None, tmp_path / "absent.csv", out, fusions="nope")
    assert not out.exists()


def test_seeds_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="seeds must be at least 1, got 0"):
        run_compare(_config(), _frame(30, 0), None, _frame(12, 2), tmp_path, fusions="concat", seeds=0)


# -- configs ------------------------------------------------------------------------------------
def test_restrict_to_keeps_one_input() -> None:
    cfg = _config()
    assert restrict_to(cfg, "words").input_names() == ["words"]
    tabular = restrict_to(cfg, "tabular")
    assert tabular.input_names() == ["tabular"] and tabular.columns["words"].type == "ignore"
    assert set(tabular.tabular_columns()) == {"size", "shade"}
    assert cfg.input_names() == ["tabular", "words"]  # the original is unchanged


def test_with_fusion_keeps_own_options_only_for_the_same_fusion() -> None:
    cfg = _config("concat", proj_dim=4)
    assert with_fusion(cfg, "concat").fusion.options == {"proj_dim": 4}
    assert with_fusion(cfg, "attention").fusion.options == {}


def test_headline_metrics_per_task() -> None:
    assert headline_metrics("multiclass") == ["accuracy", "macro_f1", "ece"]
    assert headline_metrics("regression") == ["rmse"]
    assert headline_metrics("multilabel") == ["macro_f1"]


# -- planning and the skipped path --------------------------------------------------------------
def test_a_fusion_that_cannot_be_built_is_planned_as_skipped(tmp_path: Path, pair_only: str) -> None:
    cfg = _config(three=True)
    methods = plan_methods(cfg, _prepared(tmp_path, cfg), ["concat", pair_only])
    assert [(m.name, m.kind) for m in methods] == [
        ("more-only", "unimodal"), ("tabular-only", "unimodal"), ("words-only", "unimodal"),
        ("concat", "fusion"), (pair_only, "fusion"),
    ]
    assert all(not m.skip_reason for m in methods[:4])
    assert methods[4].skip_reason == "fusion 'pair_only' takes exactly 2 inputs, got 3"
    assert methods[0].config.input_names() == ["more"]
    assert methods[3].config.input_names() == cfg.input_names()


def test_unimodal_baselines_fall_back_when_the_configs_fusion_needs_more_inputs(
    tmp_path: Path, pair_only: str
) -> None:
    cfg = _config(pair_only)
    methods = plan_methods(cfg, _prepared(tmp_path, cfg), [pair_only])
    assert [m.config.fusion.name for m in methods[:2]] == [FALLBACK_FUSION, FALLBACK_FUSION]
    assert methods[2].config.fusion.name == pair_only and not methods[2].skip_reason


def test_skipped_fusion_gets_a_row_with_its_reason_not_a_crash(tmp_path: Path, pair_only: str) -> None:
    results = run_compare(_config(three=True), _frame(30, 0), None, _frame(12, 2), tmp_path,
                          fusions=["concat", pair_only], seeds=1, progress=False, console=Console(quiet=True))
    skipped = results[results["method"] == pair_only].iloc[0]
    assert skipped["status"] == "skipped" and "exactly 2 inputs, got 3" in skipped["reason"]
    assert list(results["method"]) == ["more-only", "tabular-only", "words-only", "concat", pair_only]
    assert (results["status"][:4] == "ok").all() and results["accuracy"][:4].notna().all()
    report = (tmp_path / "report.md").read_text()
    assert "- **pair_only**: fusion 'pair_only' takes exactly 2 inputs" in report
    saved = pd.read_csv(tmp_path / "results.csv")
    assert saved["status"].tolist()[-1] == "skipped" and len(saved) == 5
    assert (tmp_path / "runs" / "concat" / "seed0" / "checkpoints").is_dir()
    assert not (tmp_path / "runs" / pair_only).exists()


def test_inference_time_is_positive(tmp_path: Path) -> None:
    from omnifuse.build import build_model

    cfg = _config()
    data = _prepared(tmp_path, cfg)
    model = build_model(cfg, data.preprocessors, data.task)
    batches = collate_rows(data.examples["test"], batch_size=5)
    assert [len(b.index) for b in batches] == [5, 5, 2]
    assert inference_ms_per_row(model, batches, repeats=2) > 0.0


# -- frozen-feature cache -----------------------------------------------------------------------
def _frozen_bert_config(folder: Path) -> Config:
    """'words' read by a tiny BERT saved to ``folder``, frozen for the whole run; 'tabular' trained."""
    from transformers import BertConfig, BertModel, BertTokenizer

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *" ".join(WORDS).split(), "a", "b"]
    BertModel(BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=20)).save_pretrained(str(folder))
    BertTokenizer(vocab={w: i for i, w in enumerate(vocab)}).save_pretrained(str(folder))
    cfg = _config()
    words = {"type": "text", "encoder": {"name": "hf_text", "model": str(folder), "max_length": 8,
                                          "freeze_epochs": -1}}
    return Config.from_dict({**cfg.to_dict(), "columns": {**cfg.to_dict()["columns"], "words": words},
                             "training": {"epochs": 2, "batch_size": 8, "patience": 2}})


def test_frozen_pretrained_encoder_is_served_from_the_cache_with_the_same_scores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    from omnifuse.encoders.text import HFTextEncoder

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cfg = _frozen_bert_config(tmp_path / "bert")
    real_forward = HFTextEncoder.forward
    calls: list[bool] = []  # per call of the real encoder: whether it ran with gradients (a training step)

    def spy(self: HFTextEncoder, inputs: dict[str, torch.Tensor]) -> Any:
        calls.append(torch.is_grad_enabled())
        return real_forward(self, inputs)

    monkeypatch.setattr(HFTextEncoder, "forward", spy)
    results = {}
    for cache in (True, False):
        calls.clear()
        console = Console(record=True, width=200)
        results[cache] = run_compare(cfg, _frame(30, 0), _frame(12, 1), _frame(12, 2), tmp_path / str(cache),
                                     fusions="concat", seeds=1, progress=False, console=console, cache=cache)
        shown = console.export_text()
        if cache:
            assert "1 input(s) served from cached features: words" in shown
            assert calls and not any(calls)  # the cache pass and the test evaluation only
        else:
            assert "cached" not in shown and any(calls)  # the real encoder ran at every training step
    prefixes = ("accuracy", "macro_f1", "missing", "corrupted")
    scored = [c for c in results[True].columns if c.startswith(prefixes)]
    assert list(results[True]["method"]) == ["tabular-only", "words-only", "concat"]
    for column in scored:
        np.testing.assert_allclose(results[True][column], results[False][column], atol=1e-5, err_msg=column)
    assert results[True]["params"].tolist() == results[False]["params"].tolist()


def test_frozen_encoder_trained_from_scratch_is_not_cached(tmp_path: Path) -> None:
    from omnifuse.workflows.compare import build_feature_cache

    cfg = Config.from_dict({**_config().to_dict(), "columns": {
        **_config().to_dict()["columns"],
        "words": {"type": "text", "encoder": {"name": "bow", "embed_dim": 8, "freeze_epochs": -1}}}})
    data = _prepared(tmp_path, cfg)
    console = Console(record=True, width=200)
    cache = build_feature_cache(cfg, data, console)
    assert cache.names == [] and cache.examples["train"] is data.examples["train"]
    shown = console.export_text()
    assert "words: frozen but randomly initialised; not cached" in shown and "0 input(s)" in shown

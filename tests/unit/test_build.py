"""Unit tests of build.py: config -> preprocessors and a working model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch

from omnifuse.build import build_encoders, build_model, make_preprocessors
from omnifuse.config.sections import ComponentConfig, Config
from omnifuse.data.collate import collate
from omnifuse.data.dataset import attach_targets, fit_values, input_specs, make_examples
from omnifuse.data.preprocess.base import Preprocessor
from omnifuse.errors import ConfigError
from omnifuse.fusion.concat import ConcatFusion
from omnifuse.model import MultimodalModel
from omnifuse.tasks import make_task

FRAME = pd.DataFrame(
    {
        "review": ["good film", "bad film", "great fun", "awful plot", "good plot", "bad acting"],
        "age": [1.0, 2.0, None, 4.0, 5.0, 6.0],
        "city": ["a", "b", "a", None, "c", "b"],
        "y": ["pos", "neg", "pos", "neg", "pos", "neg"],
    }
)


def _config(**overrides: Any) -> Config:
    raw: dict[str, Any] = {
        "label": {"column": "y", "task": "multiclass"},
        "columns": {
            "review": {"type": "text", "encoder": {"name": "bow", "embed_dim": 8}},
            "age": {"type": "numeric"},
            "city": {"type": "categorical"},
        },
        "tabular": {"name": "tabular_mlp", "embed_dim": 4, "hidden_dim": 8},
        "fusion": "concat",
        "head": {"hidden_dim": 6},
    }
    raw.update(overrides)
    return Config.from_dict(raw)


def _fitted(cfg: Config) -> dict[str, Preprocessor]:
    preprocessors = make_preprocessors(cfg)
    for spec in input_specs(cfg):
        preprocessors[spec.name].fit(fit_values(spec, FRAME, Path(".")))
    return preprocessors


def test_make_preprocessors_refuses_options_that_skipped_validation() -> None:
    cfg = _config()
    cfg.columns["review"].encoder = ComponentConfig("bow", {"embed_size": 3})  # edited after validation
    with pytest.raises(
        ConfigError, match=r"review\.encoder\.embed_size: unknown key\. Did you mean 'embed_dim'\?"
    ):
        make_preprocessors(cfg)


def test_make_preprocessors_one_per_input() -> None:
    preprocessors = make_preprocessors(_config())
    assert sorted(preprocessors) == ["review", "tabular"]
    assert all(isinstance(p, Preprocessor) for p in preprocessors.values())


def test_build_encoders_sized_by_fitted_preprocessors() -> None:
    cfg = _config()
    encoders = build_encoders(cfg, _fitted(cfg), None)
    assert sorted(encoders) == ["review", "tabular"]
    assert encoders["review"].output_dim == 8
    assert encoders["tabular"].output_dim == 8
    vocab = len(_fitted(cfg)["review"].state_dict()["vocab"])
    assert encoders["review"].embed.num_embeddings == vocab  # type: ignore[union-attr]


def _batch(cfg: Config, preprocessors: dict[str, Preprocessor], task: Any) -> Any:
    examples, bad = make_examples(FRAME, input_specs(cfg), preprocessors, cfg, Path("."))
    assert bad == []
    examples, bad = attach_targets(examples, FRAME["y"], task, "y")
    assert bad == []
    return collate(examples)


def test_build_model_forward_and_backward() -> None:
    cfg = _config()
    preprocessors = _fitted(cfg)
    task = make_task("multiclass")
    task.fit(list(FRAME["y"]))
    model = build_model(cfg, preprocessors, task)
    assert isinstance(model, MultimodalModel)
    assert isinstance(model.fusion, ConcatFusion)
    assert list(model.encoders) == ["review", "tabular"]
    assert model.fusion.output_dim == 8 + 8 + 2  # two pooled vectors and one presence flag per input
    batch = _batch(cfg, preprocessors, task)
    logits = model(batch.inputs, batch.presence)
    assert logits.shape == (6, 2)
    assert torch.isfinite(logits).all()
    assert set(model.aux_heads) == {"review", "tabular"}  # training.aux_loss: one linear head per input
    side = model.aux_logits
    assert {n: t.shape for n, t in side.items()} == {"review": (6, 2), "tabular": (6, 2)}
    loss = task.loss(logits, batch.target)["loss"]
    loss = loss + sum(task.loss(t, batch.target)["loss"] for t in side.values())
    loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_head_follows_task_and_config() -> None:
    cfg = _config(head={"hidden_dim": 0}, label={"column": "y", "task": "regression"})
    preprocessors = _fitted(cfg)
    task = make_task("regression")
    task.fit([1.0, 2.0, 3.0])
    model = build_model(cfg, preprocessors, task)
    linears = [m for m in model.head.modules() if isinstance(m, torch.nn.Linear)]
    assert len(linears) == 1 and linears[0].out_features == 1


def test_fusion_options_are_applied() -> None:
    cfg = _config(fusion={"name": "concat", "proj_dim": 5})
    task = make_task("multiclass")
    task.fit(list(FRAME["y"]))
    model = build_model(cfg, _fitted(cfg), task)
    assert model.fusion.output_dim == 5


def test_text_only_config_has_no_tabular_input() -> None:
    cfg = _config(
        columns={"review": {"type": "text", "encoder": {"name": "bow", "embed_dim": 4}}}, fusion="attention"
    )
    task = make_task("multiclass")
    task.fit(list(FRAME["y"]))
    preprocessors = _fitted(cfg)
    model = build_model(cfg, preprocessors, task)
    assert list(model.encoders) == ["review"]
    batch = _batch(cfg, preprocessors, task)
    model.eval()
    assert model(batch.inputs, batch.presence).shape == (6, 2)


@pytest.mark.parametrize("standardize", [True, False])
def test_frozen_inputs_get_a_standardizer_when_standardize_frozen_is_on(standardize: bool) -> None:
    cfg = _config(training={"standardize_frozen": standardize})
    raw = cfg.to_dict()
    raw["columns"]["review"]["encoder"]["freeze_epochs"] = -1
    frozen = Config.from_dict(raw)
    preprocessors = _fitted(frozen)
    task = make_task("multiclass")
    task.fit(list(FRAME["y"]))
    model = build_model(frozen, preprocessors, task)
    assert list(model.standardizers) == (["review"] if standardize else [])
    assert not build_model(cfg, preprocessors, task).standardizers  # nothing frozen


def test_the_readout_reads_linear_features_sparse_tfidf_and_frozen_embeddings() -> None:
    columns = {"review": {"type": "text", "encoder": {"name": "tfidf", "embed_dim": 8, "min_df": 1}},
               "again": {"type": "text", "source": "review",
                         "encoder": {"name": "bow", "embed_dim": 8, "freeze_epochs": -1}},
               "age": {"type": "numeric"}}
    cfg = _config(columns=columns)
    preprocessors = _fitted(cfg)
    task = make_task("multiclass")
    task.fit(list(FRAME["y"]))
    readout = build_model(cfg, preprocessors, task).readout
    assert readout is not None
    assert {n: (i.source, i.sparse) for n, i in readout.inputs.items()} == {
        "again": ("pooled", False), "review": ("linear", True)}  # the tabular MLP trains: not read
    off = _config(columns=columns, readout={"enabled": False})
    assert build_model(off, _fitted(off), task).readout is None

"""Per-column pipelines: auto / none / explicit, validation at config load, cached columns skipped."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from omnifuse.augment.pipelines import build_pipelines, resolved_augment
from omnifuse.config.sections import Config
from omnifuse.errors import ConfigError


def _config(**columns: dict[str, Any]) -> Config:
    return Config.from_dict({"label": {"column": "y", "task": "multiclass"}, "columns": columns})


def test_auto_gives_from_scratch_encoders_their_defaults_and_pretrained_ones_none() -> None:
    config = _config(
        photo={"type": "image", "encoder": "small_cnn"},
        clip={"type": "audio", "encoder": "mel_cnn"},
        voice={"type": "audio"},  # mfcc_stats: its statistics suffer from SpecAugment's stripes
        big={"type": "image", "encoder": {"name": "efficientnet_lite0", "pretrained": False}},
    )
    assert set(resolved_augment(config.columns["photo"])) == {"affine"}
    assert set(resolved_augment(config.columns["clip"])) == {"spec_augment", "tempo", "shift"}
    assert set(resolved_augment(config.columns["voice"])) == {"tempo"}
    assert resolved_augment(config.columns["big"]) == {}
    assert set(build_pipelines(config)) == {"photo", "clip", "voice"}


def test_none_and_explicit_settings() -> None:
    config = _config(
        photo={"type": "image", "augment": "none"},
        clip={"type": "audio", "augment": {"noise": {"max_std": 0.5}}},
    )
    pipelines = build_pipelines(config)
    assert set(pipelines) == {"clip"}
    assert pipelines["clip"].names == ["noise"]


def test_skip_leaves_cached_columns_alone() -> None:
    config = _config(photo={"type": "image"}, clip={"type": "audio"})
    assert set(build_pipelines(config, skip={"photo"})) == {"clip"}


def test_problems_are_reported_at_load_with_the_path_and_the_fix() -> None:
    with pytest.raises(ConfigError) as info:
        _config(
            photo={"type": "image", "augment": {"spec_augment": {}, "afine": {}, "erase": {"p": "x"}}},
            words={"type": "text", "augment": "always"},
        )
    problems = info.value.problems
    assert any(p.startswith("columns.photo.augment.spec_augment: transforms mel, mask") and "affine" in p
               for p in problems)
    assert any("columns.photo.augment: unknown augmentation 'afine'. Did you mean 'affine'?" in p
               for p in problems)
    assert any(p.startswith("columns.photo.augment.erase.p: expected float") for p in problems)
    assert any(p.startswith("columns.words.augment: 'always' is not auto, none or a mapping")
               for p in problems)


def test_a_transform_whose_tensors_the_encoder_does_not_give_fails_clearly() -> None:
    config = _config(clip={"type": "audio", "encoder": "hf_audio", "augment": {"spec_augment": {}}})
    pipeline = build_pipelines(config)["clip"]
    inputs = {"input_values": torch.zeros(2, 100), "mask": torch.ones(2, 100, dtype=torch.bool)}
    with pytest.raises(ConfigError, match=r"columns.clip.augment.spec_augment: reads mel, mask, but "
                                          r"this column's encoder gives input_values, mask; remove"):
        pipeline(inputs, torch.Generator())


def test_config_round_trip_keeps_augment() -> None:
    config = _config(photo={"type": "image", "augment": {"affine": {"degrees": 5.0}}})
    assert Config.from_dict(config.to_dict()) == config

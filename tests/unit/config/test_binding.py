"""Unit tests of config/binding.py: every component's options parsed once, at load, and reused by build."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import omnifuse.config.parsing as parsing
from omnifuse.augment.pipelines import build_pipelines
from omnifuse.build import build_model, make_preprocessors, make_task_for
from omnifuse.config.binding import encoder_options, fusion_options
from omnifuse.config.sections import ComponentConfig, Config
from omnifuse.data.dataset import fit_values, input_specs
from omnifuse.encoders.base import ENCODERS
from omnifuse.encoders.text import BOWOptions
from omnifuse.errors import ConfigError
from omnifuse.fusion.attention import AttentionOptions

RAW: dict[str, Any] = {
    "label": {"column": "y", "task": "multiclass"},
    "columns": {
        "review": {"type": "text", "encoder": {"name": "bow", "embed_dim": 8}},
        "photo": {"type": "image", "encoder": {"name": "small_cnn", "widths": [4, 8]}},
        "age": {"type": "numeric"},
    },
    "fusion": {"name": "attention", "dim": 16},
}


@pytest.fixture
def count_parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records the path of every dataclass that config parsing builds from a mapping from now on."""
    seen: list[str] = []
    original = parsing.from_dict

    def counting(cls: type, data: Any, path: str, problems: list[str]) -> Any:
        seen.append(path)
        return original(cls, data, path, problems)

    monkeypatch.setattr(parsing, "from_dict", counting)
    return seen


def test_load_parses_every_component_into_its_dataclass() -> None:
    cfg = Config.from_dict(RAW)
    review = cfg.columns["review"].encoder
    assert review is not None and review.parsed is not None
    assert review.parsed.value == BOWOptions(embed_dim=8)
    assert cfg.fusion.parsed is not None and cfg.fusion.parsed.value == AttentionOptions(dim=16)
    assert cfg.tabular.parsed is not None and cfg.tabular.parsed.problems == ()
    photo = cfg.columns["photo"]
    assert set(photo.parsed_augment) == set(ENCODERS.get("small_cnn").augment) != set()  # auto: its own


def test_build_takes_the_options_parsed_at_load(count_parses: list[str], tmp_path: Path) -> None:
    cfg = Config.from_dict(RAW)
    loaded = len(count_parses)
    frame = pd.DataFrame({"review": ["good", "bad"], "photo": ["", ""], "age": [1.0, 2.0]})
    preprocessors = make_preprocessors(cfg)
    for spec in input_specs(cfg):
        if spec.name != "photo":
            preprocessors[spec.name].fit(fit_values(spec, frame, tmp_path))
    task = make_task_for(cfg)
    task.fit(pd.Series(["a", "b"]))
    build_model(cfg, preprocessors, task)
    build_pipelines(cfg)
    assert loaded > 0
    assert count_parses[loaded:] == []  # neither build nor the pipelines parsed again


def test_options_changed_after_load_are_parsed_again() -> None:
    cfg = Config.from_dict(RAW)
    review = cfg.columns["review"].encoder
    assert review is not None
    review.options["embed_dim"] = 12
    assert encoder_options(review, "review.encoder") == BOWOptions(embed_dim=12)
    replaced = dataclasses.replace(cfg.fusion, options={"dim": 32})
    assert replaced.parsed is None  # a copy with other options does not keep the old parse
    assert fusion_options(replaced) == AttentionOptions(dim=32)


def test_a_component_built_in_code_is_parsed_when_built() -> None:
    assert encoder_options(ComponentConfig("bow", {"embed_dim": 12}), "review.encoder") == BOWOptions(12)


def test_bad_options_of_a_component_built_in_code_raise_every_problem() -> None:
    component = ComponentConfig("bow", {"embed_dimm": 12, "dropout": "x"})
    with pytest.raises(ConfigError, match=r"2 problem\(s\)") as info:
        encoder_options(component, "review.encoder")
    first = info.value.problems[0]
    assert first.startswith("review.encoder.embed_dimm: unknown key. Did you mean 'embed_dim'?")
    assert info.value.problems[1] == "review.encoder.dropout: expected float, got str 'x'"


def test_bad_options_are_reported_once_at_load_with_their_path() -> None:
    with pytest.raises(ConfigError) as info:
        Config.from_dict({**RAW, "fusion": {"name": "attention", "dim": 0}})
    found = [p for p in info.value.problems if p.startswith("fusion.dim")]
    assert found == ["fusion.dim: 0 is out of range: it must be >= 1; set e.g. the default, 128"]


def test_parsed_values_are_not_written_or_read_as_yaml() -> None:
    cfg = Config.from_dict(RAW)
    flat = cfg.to_dict()
    assert "parsed_augment" not in flat["columns"]["photo"]
    assert "parsed" not in flat["fusion"]
    assert Config.from_dict(flat) == cfg
    with pytest.raises(ConfigError, match=r"columns.photo.parsed_augment: unknown key"):
        Config.from_dict({**RAW, "columns": {"photo": {"type": "image", "parsed_augment": {}}}})

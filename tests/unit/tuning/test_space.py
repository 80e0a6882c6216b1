"""The search space: parsing each distribution, and every problem reported at config load."""

from __future__ import annotations

import copy
from typing import Any

import optuna
import pytest

from omnifuse.config.sections import Config
from omnifuse.errors import ConfigError
from omnifuse.tuning.space import Param, locate, parse_space

BASE: dict[str, Any] = {
    "label": {"column": "y", "task": "multiclass"},
    "columns": {
        "photo": {"type": "image", "encoder": {"name": "small_cnn", "size": 16}},
        "clip": {"type": "audio"},  # encoder left to the default: mfcc_stats with default options
        "age": {"type": "numeric"},
    },
    "fusion": {"name": "attention", "dim": 64},
}


def _config(search: dict[str, Any], **sections: Any) -> Config:
    raw = copy.deepcopy(BASE)
    raw.update(sections)
    return Config.from_dict({**raw, "search": search})


def test_each_distribution_parses_yaml_bounds_including_exponents_written_as_text() -> None:
    params, problems = parse_space({
        "training.lr": {"loguniform": ["1e-4", "1e-2"]},  # YAML 1.1 reads 1e-4 as a string
        "head.dropout": {"uniform": [0, 0.3]},
        "columns.photo.encoder.size": {"int": [8, 32]},
        "fusion.name": {"choice": ["concat", "attention"]},
    })
    assert problems == []
    assert params == [
        Param("training.lr", "loguniform", 1e-4, 1e-2),
        Param("head.dropout", "uniform", 0, 0.3),
        Param("columns.photo.encoder.size", "int", 8, 32),
        Param("fusion.name", "choice", choices=("concat", "attention")),
    ]


def test_a_valid_space_loads_with_its_config_including_options_left_at_their_default() -> None:
    config = _config({
        "training.lr": {"loguniform": [1e-4, 1e-2]},
        "columns.clip.encoder.segments": {"int": [4, 16]},  # not written in the YAML: the default's
        "fusion.name": {"choice": ["attention", "low_rank_tensor"]},
        "fusion.rank": {"int": [2, 8]},  # an option of one searched candidate only
        "columns.photo.encoder.widths": {"choice": [[8, 16], [16, 32]]},
    })
    assert set(config.search) == {"training.lr", "columns.clip.encoder.segments", "fusion.name",
                                  "fusion.rank", "columns.photo.encoder.widths"}


@pytest.mark.parametrize(("search", "message"), [
    ({"training.lr": {"normal": [0, 1]}},
     r"search\.training\.lr: unknown distribution 'normal'\. Did you mean 'uniform'\? Available: loguniform"),
    ({"training.lr": {"uniform": [0.1, 0.2], "int": [1, 2]}},
     r"search\.training\.lr: give exactly one distribution .*got the keys \['int', 'uniform'\]"),
    ({"training.lr": {}}, r"search\.training\.lr: give exactly one distribution"),
    ({"head.dropout": {"uniform": [0.3, 0.1]}},
     r"search\.head\.dropout: low 0\.3 must be below high 0\.1; write \[0\.1, 0\.3\]"),
    ({"head.dropout": {"uniform": [0.2, 0.2]}}, r"search\.head\.dropout: low 0\.2 must be below high 0\.2"),
    ({"training.lr": {"loguniform": [0, 0.1]}},
     r"search\.training\.lr: loguniform needs low > 0 \(got 0\); .*or use uniform"),
    ({"training.lr": {"loguniform": [-1, 0.1]}},
     r"search\.training\.lr: loguniform needs low > 0 \(got -1\)"),
    ({"training.lrr": {"loguniform": [1e-4, 1e-2]}},
     r"search\.training\.lrr: 'training\.lrr' is not a key of this config\. Did you mean 'training\.lr'\?"),
    ({"columns.clip.encoder.segmets": {"int": [4, 16]}},
     r"'columns\.clip\.encoder\.segmets' is not a key of this config\. "
     r"Did you mean 'columns\.clip\.encoder\.segments'\?"),
    ({"fusion.rank": {"int": [2, 8]}}, r"search\.fusion\.rank: 'fusion\.rank' is not a key of this config"),
    ({"fusion.name": {"choice": []}},
     r"search\.fusion\.name: choice needs a non-empty list of values, "
     r"e\.g\. \{choice: \[concat, attention\]\}"),
    ({"fusion.name": {"choice": "concat"}}, r"search\.fusion\.name: choice needs a non-empty list"),
    ({"fusion.name": {"choice": ["concat", "concat"]}}, r"search\.fusion\.name: choice lists a value twice"),
    ({"training.epochs": {"int": [1.5, 4]}}, r"search\.training\.epochs: int needs whole-number bounds"),
    ({"training.epochs": {"int": [1, "many"]}},
     r"search\.training\.epochs: int needs \[low, high\] \(two numbers\)"),
    ({"training.epochs": {"uniform": [1, 10]}},
     r"search\.training\.epochs: holds a whole number \(40\); use int: \[1, 10\]"),
    ({"training.feature_cache": {"uniform": [0, 1]}},
     r"search\.training\.feature_cache: holds bool true, not a number; use choice"),
    ({"fusion": {"uniform": [0, 1]}}, r"search\.fusion: is a section, not a value; search one of its keys"),
    ({"label.task": {"choice": ["binary", "multiclass"]}},
     r"search\.label\.task: label cannot be searched \(it changes what is predicted\)"),
    ({"training.monitor": {"choice": ["accuracy", "loss"]}},
     r"search\.training\.monitor: training\.monitor cannot be searched "
     r"\(it changes what the study optimises\)"),
])
def test_problems_name_the_key_and_the_fix(search: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _config(search)


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as info:
        _config({"training.lrr": {"uniform": [0.1, 0.2]}, "head.dropout": {"uniform": [0.3, 0.1]},
                 "fusion.name": {"choice": []}})
    assert len(info.value.problems) == 3


def test_locate_matches_column_names_that_contain_dots() -> None:
    flat = {"columns": {"a": {"type": "numeric"}, "a.b": {"type": "image", "encoder": {"name": "small_cnn"}}}}
    assert locate(flat, "columns.a.b.encoder.name") == (["columns", "a.b", "encoder", "name"], "")
    assert locate(flat, "columns.a.b.encoder.size") == (["columns", "a.b", "encoder"], "size")
    assert locate(flat, "columns.a.type") == (["columns", "a", "type"], "")
    assert locate(flat, "training.lr") == ([], "training.lr")


def test_suggest_draws_inside_the_bounds_and_decodes_list_choices() -> None:
    params = [Param("training.lr", "loguniform", 1e-4, 1e-2),
              Param("columns.photo.encoder.size", "int", 8, 32),
              Param("widths", "choice", choices=([8, 16], [16, 32]))]
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(5):
        trial = study.ask()
        lr, size, widths = (p.suggest(trial) for p in params)
        assert 1e-4 <= lr <= 1e-2
        assert isinstance(size, int) and 8 <= size <= 32
        assert widths in ([8, 16], [16, 32])
        assert trial.params["widths"] in ("[8, 16]", "[16, 32]")  # stored as JSON text
        assert params[2].decode(trial.params["widths"]) == widths

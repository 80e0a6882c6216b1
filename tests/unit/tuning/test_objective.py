"""One trial's pieces: its config (values written in, re-validated), the prepared-data key, the time cap,
the pruning callback and the direction of the study."""

from __future__ import annotations

import copy
import time
from typing import Any

import optuna
import pytest

from omnifuse.config.sections import Config
from omnifuse.errors import ConfigError
from omnifuse.tuning.objective import (
    apply_values,
    cap_time_limit,
    could_be_best,
    monitor_of,
    preprocessing_key,
    pruning_callback,
    suggest_values,
    values_of,
)
from omnifuse.tuning.space import parse_space

RAW: dict[str, Any] = {
    "label": {"column": "y", "task": "multiclass"},
    "columns": {
        "photo": {"type": "image", "encoder": {"name": "small_cnn", "size": 16, "channels": 1}},
        "note": {"type": "text", "encoder": {"name": "bow", "embed_dim": 16}},
        "age": {"type": "numeric"},
    },
    "fusion": {"name": "attention", "dim": 64, "attn_dim": 32},
    "search": {
        "training.lr": {"loguniform": [1e-4, 1e-2]},
        "fusion.name": {"choice": ["attention", "concat", "low_rank_tensor"]},
        "fusion.dim": {"int": [16, 64]},
        "fusion.rank": {"int": [2, 8]},
        "columns.photo.encoder.widths": {"choice": [[8, 16], [16, 32]]},
    },
}


def _config(**changes: Any) -> Config:
    raw = copy.deepcopy(RAW)
    raw.update(changes)
    return Config.from_dict(raw)


def test_apply_values_writes_each_value_and_empties_search() -> None:
    config = _config()
    trial = apply_values(config, {"training.lr": 0.005, "fusion.dim": 32, "head.dropout": 0.25,
                                  "columns.photo.encoder.widths": [8, 16]})
    assert trial.training.lr == 0.005
    assert trial.fusion.name == "attention" and trial.fusion.options == {"dim": 32, "attn_dim": 32}
    assert trial.columns["photo"].encoder is not None
    assert trial.columns["photo"].encoder.options["widths"] == [8, 16]
    assert trial.head.dropout == 0.25
    assert trial.search == {} and config.search  # the study's config is left as it was
    assert config.training.lr == 0.002


def test_a_new_component_name_drops_the_options_the_new_component_lacks() -> None:
    trial = apply_values(_config(), {"fusion.name": "concat"})
    assert trial.fusion.name == "concat" and trial.fusion.options == {}  # attention's dim / attn_dim dropped
    ranked = apply_values(_config(), {"fusion.name": "low_rank_tensor", "fusion.rank": 3})
    assert ranked.fusion.options == {"dim": 64, "rank": 3}  # low_rank_tensor has dim too: kept


def test_a_bad_combination_of_values_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"fusion: 'bilinear' fuses exactly 2 inputs, this config has 3"):
        apply_values(_config(), {"fusion.name": "bilinear"})
    with pytest.raises(ConfigError, match=r"head\.dropout: must be in \[0, 1\), got 1\.5"):
        apply_values(_config(), {"head.dropout": 1.5})


def test_suggest_values_leaves_out_options_the_chosen_component_does_not_have() -> None:
    config = _config()
    params, _ = parse_space(config.search)
    flat = config.to_dict()
    concat = suggest_values(flat, params, optuna.trial.FixedTrial(
        {"fusion.name": "concat", "training.lr": 0.002, "columns.photo.encoder.widths": "[8, 16]"}))
    assert concat == {"fusion.name": "concat", "training.lr": 0.002, "columns.photo.encoder.widths": [8, 16]}
    ranked = suggest_values(flat, params, optuna.trial.FixedTrial(
        {"fusion.name": "low_rank_tensor", "training.lr": 0.002, "fusion.dim": 32, "fusion.rank": 4,
         "columns.photo.encoder.widths": "[16, 32]"}))
    assert ranked["fusion.rank"] == 4 and ranked["fusion.dim"] == 32
    assert values_of(params, {"columns.photo.encoder.widths": "[16, 32]", "training.lr": 0.1}) == {
        "columns.photo.encoder.widths": [16, 32], "training.lr": 0.1}


def test_cap_time_limit_never_lets_a_trial_run_past_the_study_deadline() -> None:
    config = _config()
    assert cap_time_limit(config, None) is config
    capped = cap_time_limit(config, time.time() + 100)
    assert 98 <= capped.training.time_limit <= 100
    assert cap_time_limit(config, time.time() - 5).training.time_limit == 1.0  # at least a second
    short = apply_values(config, {"training.time_limit": 30.0})
    assert cap_time_limit(short, time.time() + 100).training.time_limit == 30.0  # the trial's own is smaller


def test_preprocessing_key_changes_only_with_what_the_prepared_rows_depend_on() -> None:
    config = _config()
    key = preprocessing_key(config, split_from_train=False)
    assert preprocessing_key(apply_values(config, {"training.lr": 0.01, "fusion.name": "concat",
                                                   "columns.photo.encoder.widths": [8, 16]}), False) == key
    assert preprocessing_key(apply_values(config, {"columns.photo.encoder.size": 24}), False) != key
    assert preprocessing_key(apply_values(config, {"columns.note.encoder.max_vocab": 50}), False) != key
    seeded = apply_values(config, {"training.seed": 3})
    assert preprocessing_key(seeded, False) == key  # a validation table is given: the seed does not split
    assert preprocessing_key(seeded, True) != preprocessing_key(config, True)


class FakeTrial:
    """Records what the pruning callback reports; prunes from step ``prune_from`` on."""

    def __init__(self, prune_from: int) -> None:
        self.prune_from, self.number = prune_from, 7
        self.reported: list[tuple[float, int]] = []
        self.user_attrs: dict[str, Any] = {}

    def report(self, value: float, step: int) -> None:
        self.reported.append((value, step))

    def should_prune(self) -> bool:
        return bool(self.reported) and self.reported[-1][1] >= self.prune_from

    def set_user_attr(self, key: str, value: Any) -> None:
        self.user_attrs[key] = value


def test_pruning_callback_reports_each_epoch_and_prunes_when_the_pruner_says_so() -> None:
    trial = FakeTrial(prune_from=1)
    callback = pruning_callback(trial, "accuracy", epochs=5)
    callback(0, {"accuracy": 0.4, "valid_loss": 1.0})
    callback(1, {"valid_loss": 0.9})  # monitor undefined this epoch: nothing reported
    with pytest.raises(optuna.TrialPruned, match=r"pruned after epoch 3 \(accuracy 0\.5000\)"):
        callback(2, {"accuracy": 0.5})
    assert trial.reported == [(0.4, 0), (0.5, 2)]
    assert trial.user_attrs == {"pruned_epoch": 3}


def test_pruning_callback_does_not_prune_after_the_last_epoch() -> None:
    trial = FakeTrial(prune_from=0)
    callback = pruning_callback(trial, "rmse", epochs=2)
    with pytest.raises(optuna.TrialPruned):
        callback(0, {"rmse": 3.0})
    callback(1, {"rmse": float("nan")})
    callback(1, {"rmse": 2.0})  # the last epoch: reported, never pruned
    assert trial.reported == [(3.0, 0), (2.0, 1)]


@pytest.mark.parametrize(("task", "monitor", "expected"), [
    ("multiclass", "auto", ("accuracy", "maximize")),
    ("multiclass", "loss", ("loss", "minimize")),
    ("multiclass", "macro_f1", ("macro_f1", "maximize")),
    ("regression", "auto", ("rmse", "minimize")),
    ("regression", "r2", ("r2", "maximize")),
    ("multilabel", "auto", ("macro_f1", "maximize")),
])
def test_monitor_of_follows_the_task(task: str, monitor: str, expected: tuple[str, str]) -> None:
    config = _config(label={"column": "y", "task": task}, training={"monitor": monitor})
    assert monitor_of(config) == expected


def test_could_be_best_compares_with_the_best_complete_trial() -> None:
    study = optuna.create_study(direction="maximize")
    assert could_be_best(study.ask(), 0.5, "maximize")  # nothing complete yet
    study.add_trial(optuna.trial.create_trial(value=0.8))
    trial = study.ask()
    assert could_be_best(trial, 0.9, "maximize")
    assert not could_be_best(trial, 0.8, "maximize")  # a tie: the earlier trial stays the best
    assert could_be_best(trial, 0.1, "minimize")

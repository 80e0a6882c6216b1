"""trials.csv rows, the per-trial line, the best-trials table and report.md with its plots, from studies
made by hand (no training)."""

from __future__ import annotations

from pathlib import Path

import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState, create_trial
from rich.console import Console

from omnifuse.tuning.report import StudyInfo, best_trials_table, trial_line, trials_frame, write_report

LR = FloatDistribution(1e-4, 1e-1, log=True)
FUSION = CategoricalDistribution(["concat", "attention"])
INFO = StudyInfo("s", "sqlite:///x.db", "accuracy", "maximize", "best_config.yaml", "best_model")


def _study(values: list[float]) -> optuna.Study:
    study = optuna.create_study(direction="maximize")
    for i, value in enumerate(values):
        study.add_trial(create_trial(
            value=value,
            params={"training.lr": 10 ** -(1 + i % 3), "fusion.name": ["concat", "attention"][i % 2]},
            distributions={"training.lr": LR, "fusion.name": FUSION},
            user_attrs={"epochs": 3, "best_epoch": 2, "worker": 0, "host": "h"}))
    study.add_trial(create_trial(state=TrialState.PRUNED, params={"training.lr": 0.05},
                                 distributions={"training.lr": LR}, intermediate_values={0: 0.2, 1: 0.25},
                                 user_attrs={"pruned_epoch": 2}))
    study.add_trial(create_trial(state=TrialState.FAIL, params={"fusion.name": "concat"},
                                 distributions={"fusion.name": FUSION},
                                 user_attrs={"error": "fusion: 'bilinear' fuses exactly 2 inputs"}))
    return study


def test_trials_frame_has_one_row_per_trial_with_state_value_and_params() -> None:
    frame = trials_frame(_study([0.5, 0.9, 0.7]).trials)
    assert list(frame.columns[:10]) == ["number", "state", "value", "seconds", "epochs", "best_epoch",
                                        "pruned_epoch", "error", "worker", "host"]
    assert list(frame.columns[10:]) == ["training.lr", "fusion.name"]
    assert list(frame["state"]) == ["complete"] * 3 + ["pruned", "failed"]
    assert list(frame["value"][:3]) == [0.5, 0.9, 0.7]
    assert frame["pruned_epoch"].tolist()[3] == 2 and str(frame["pruned_epoch"].dtype) == "Int64"
    assert frame["error"].tolist()[4].startswith("fusion: 'bilinear'")


def test_trial_line_says_what_happened() -> None:
    trials = _study([0.5]).trials
    assert trial_line(trials[0], "accuracy").startswith("trial 0: accuracy 0.5000 in 0.0 s [training.lr=0.1")
    assert trial_line(trials[1], "accuracy", worker=2).startswith("trial 1 (worker 2): pruned after epoch 2")
    assert "failed: fusion: 'bilinear' fuses exactly 2 inputs" in trial_line(trials[2], "accuracy")


def test_best_trials_table_lists_complete_trials_best_first() -> None:
    frame = trials_frame(_study([0.5, 0.9, 0.7]).trials)
    console = Console(record=True, width=200)
    console.print(best_trials_table(frame, "accuracy", "maximize", rows=2))
    text = console.export_text()
    assert text.index("0.9000") < text.index("0.7000") and "0.5000" not in text


def test_report_has_history_and_importance_plots_and_the_failures(tmp_path: Path) -> None:
    study = _study([0.5, 0.9, 0.7, 0.6])
    report = write_report(tmp_path, study, trials_frame(study.trials), INFO)
    text = report.read_text()
    assert "6 trial(s) (4 complete, 1 pruned, 1 failed)" in text
    assert "**Best: trial 1, accuracy 0.9000**" in text
    assert "![optimisation history](plots/history.png)" in text
    assert "![parameter importances](plots/importances.png)" in text
    assert "- trial 5: fusion: 'bilinear' fuses exactly 2 inputs" in text
    for name in ("history.png", "importances.png"):
        assert (tmp_path / "plots" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_says_why_there_are_no_importances_below_two_complete_trials(tmp_path: Path) -> None:
    study = _study([0.5])
    text = write_report(tmp_path, study, trials_frame(study.trials), INFO).read_text()
    assert "Parameter importances need at least 2 complete trials; this study has 1." in text
    assert not (tmp_path / "plots" / "importances.png").exists()
    assert (tmp_path / "plots" / "history.png").exists()

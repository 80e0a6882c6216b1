"""Comparison outputs on stand-in results: aggregation over seeds, the verdict, tables, plot, report.md."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from PIL import Image
from rich.console import Console

from omnifuse.evaluation.comparison_report import (
    ComparisonInfo,
    comparison_tables,
    plot_comparison,
    summarise,
    verdict,
    write_comparison_report,
)

INFO = ComparisonInfo(
    task="multiclass", metric="accuracy", mode="max", metrics=["accuracy", "macro_f1"],
    inputs=["audio", "image"], seeds=[0, 1, 2], n_test=300,
)


def _runs(method: str, kind: str, scores: list[float], **extra: float) -> list[dict[str, Any]]:
    return [
        {"method": method, "kind": kind, "run": i, "seed": i, "status": "ok", "reason": "",
         "accuracy": s, "macro_f1": s - 0.01, "params": 1000, "train_s": 10.0 + i, "ms_per_row": 0.5,
         "best_epoch": 3, "missing_audio": s - 0.2, "corrupted_audio": s - 0.1,
         "missing_image": s - 0.3, "corrupted_image": s - 0.05, **extra}
        for i, s in enumerate(scores)
    ]


def _results(fusion_scores: list[float], best_single: list[float]) -> pd.DataFrame:
    rows = _runs("audio-only", "unimodal", [0.70, 0.72, 0.74])
    rows += _runs("image-only", "unimodal", best_single)
    rows += _runs("concat", "fusion", [0.80, 0.80, 0.80])
    rows += _runs("attention", "fusion", fusion_scores)
    rows.append({"method": "bilinear", "kind": "fusion", "run": None, "seed": None, "status": "skipped",
                 "reason": "fusion 'bilinear' takes exactly 2 inputs, got 3"})
    return pd.DataFrame(rows)


def test_summary_has_mean_and_sample_std_per_method_in_order() -> None:
    summary = summarise(_results([0.90, 0.92, 0.94], [0.85, 0.85, 0.85]))
    assert list(summary["method"]) == ["audio-only", "image-only", "concat", "attention", "bilinear"]
    audio = summary.iloc[0]
    assert audio["accuracy_mean"] == pytest.approx(0.72)
    assert audio["accuracy_std"] == pytest.approx(0.02)  # ddof=1: sqrt((0.02^2 * 2) / 2)
    assert audio["train_s_mean"] == pytest.approx(11.0) and audio["seeds"] == 3
    assert audio["missing_image_mean"] == pytest.approx(0.42)
    skipped = summary.iloc[4]
    assert skipped["status"] == "skipped" and skipped["seeds"] == 0
    assert "exactly 2 inputs" in skipped["reason"] and math.isnan(skipped["accuracy_mean"])


def test_single_seed_has_zero_std() -> None:
    summary = summarise(pd.DataFrame(_runs("concat", "fusion", [0.8])))
    assert summary.iloc[0]["accuracy_std"] == 0.0


def test_verdict_fusion_won_by_more_than_the_spread() -> None:
    text = verdict(summarise(_results([0.90, 0.92, 0.94], [0.85, 0.85, 0.85])), "accuracy", "max")
    assert "best fusion is **attention**" in text and "**image-only**" in text
    assert "beats it by 0.0700" in text and "(0.0200" in text and "fusion **won**" in text


def test_verdict_within_the_seed_spread() -> None:
    text = verdict(summarise(_results([0.80, 0.90, 1.00], [0.85, 0.86, 0.87])), "accuracy", "max")
    assert "ahead by 0.0400" in text and "within the seed spread (0.1000" in text
    assert "won**" not in text


def test_verdict_fusion_did_not_win() -> None:
    text = verdict(summarise(_results([0.70, 0.70, 0.70], [0.95, 0.95, 0.95])), "accuracy", "max")
    assert "best fusion is **concat**" in text and "is 0.1500 worse" in text and "did **not** win" in text


def test_verdict_lower_is_better_for_rmse() -> None:
    rows = [{"method": m, "kind": k, "run": i, "seed": i, "status": "ok", "reason": "", "rmse": v}
            for m, k, vals in (("a-only", "unimodal", [2.0, 2.1]), ("concat", "fusion", [1.0, 1.1]))
            for i, v in enumerate(vals)]
    text = verdict(summarise(pd.DataFrame(rows)), "rmse", "min")
    assert "lower is better" in text and "beats it by 1.0000" in text and "fusion **won**" in text


def test_verdict_without_fusions_or_baselines() -> None:
    only_single = summarise(pd.DataFrame(_runs("a-only", "unimodal", [0.5, 0.6])))
    assert verdict(only_single, "accuracy", "max").startswith("No fusion method finished")
    only_fusion = summarise(pd.DataFrame(_runs("concat", "fusion", [0.5, 0.6])))
    assert "no unimodal baseline" in verdict(only_fusion, "accuracy", "max")


def test_report_and_tables_show_every_method_and_the_skipped_reason(tmp_path: Path) -> None:
    summary = summarise(_results([0.90, 0.92, 0.94], [0.85, 0.85, 0.85]))
    text = write_comparison_report(tmp_path, summary, INFO).read_text(encoding="utf-8")
    assert "## Verdict" in text and "fusion **won**" in text
    assert "| attention | fusion | 0.920 ± 0.020 | 0.910 ± 0.020 | 1.0k | 11.0 | 0.500 |" in text
    assert "| no audio | noisy audio | no image | noisy image |" in text
    assert "- **bilinear**: fusion 'bilinear' takes exactly 2 inputs" in text
    assert "![Comparison](comparison.png)" in text
    console = Console(record=True, width=200)
    for table in comparison_tables(summary, INFO):
        console.print(table)
    shown = console.export_text()
    assert "0.920 ± 0.020" in shown and "Skipped methods" in shown and "noisy image" in shown


def test_plot_is_a_real_png(tmp_path: Path) -> None:
    summary = summarise(_results([0.90, 0.92, 0.94], [0.85, 0.85, 0.85]))
    path = plot_comparison(summary, INFO, tmp_path / "comparison.png")
    assert path.stat().st_size > 10_000
    with Image.open(path) as image:
        assert image.format == "PNG" and image.width > 500 and image.height > 500


def test_baseline_rows_get_a_verdict_sentence_and_stay_out_of_the_robustness_table(tmp_path: Path) -> None:
    from omnifuse.evaluation.comparison_report import robustness_rows

    rows = _runs("concat", "fusion", [0.80, 0.82, 0.84])
    rows.append({"method": "baseline: fused (linear)", "kind": "baseline", "run": None, "seed": None,
                 "status": "ok", "reason": "", "accuracy": 0.90, "macro_f1": 0.89, "train_s": 2.0})
    summary = summarise(pd.DataFrame(rows))
    floor = summary[summary["kind"] == "baseline"].iloc[0]
    assert floor["seeds"] == 1 and floor["accuracy_std"] == 0.0
    text = verdict(summary, "accuracy", "max")
    assert "The best classical baseline is **baseline: fused (linear)**: 0.9000" in text
    assert "**concat**, is 0.0800 worse: the trained models lose to a classical baseline." in text
    assert [r[0] for r in robustness_rows(summary, INFO)[1]] == ["concat"]
    plot_comparison(summary, INFO, tmp_path / "comparison.png")
    assert (tmp_path / "comparison.png").is_file()
    winning = summarise(pd.DataFrame(_runs("concat", "fusion", [0.95, 0.95]) + rows[-1:]))
    assert "beats it by 0.0500." in verdict(winning, "accuracy", "max")

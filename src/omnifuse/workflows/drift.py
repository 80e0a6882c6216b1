"""``omnifuse validate --model DIR --data TABLE``: the share of each column's values a trained model's OOD
scores flag, against the share expected of rows like its validation rows (a drift check before deployment)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console

from omnifuse.data.collate import batches
from omnifuse.errors import DataError
from omnifuse.inference.loading import load
from omnifuse.model import MultimodalModel
from omnifuse.ood.drift import drift_lines
from omnifuse.ood.scoring import has_scores, score_table


def drift_report(model: str | Path, data: str | Path, console: Console) -> dict[str, dict[str, Any]]:
    """Scores every row of ``data`` with the model's OOD statistics; prints and returns the flag rates per
    input (see ``flag_rates``).

    Raises:
        DataError: the model has no fitted OOD scores; bad rows follow ``Predictor.prepare``.
    """
    predictor = load(model)
    if not has_scores(predictor.model):
        raise DataError(f"{model} has no OOD scores (trained with `ood.enabled: false`, or saved before "
                        "they existed); re-train it to check tables for drift")
    examples = predictor.prepare(data, purpose="check for drift")
    network = predictor.model
    assert isinstance(network, MultimodalModel) and network.gate is not None, "has_scores"
    rates = score_table(network, list(batches(examples, predictor.batch_size)), predictor.device,
                        drop_drifted=False).rates
    console.print(f"Drift check of {data} ({len(examples)} row(s)) against the training data of {model}:")
    for line in drift_lines(rates):
        console.print(f"  {line}", markup=False, highlight=False)
    return rates


def run_drift(model: Path, data: Path, console: Console) -> int:
    """The command: 0 when no column drifted, 1 when one did, 2 on an error (printed)."""
    from omnifuse.errors import OmnifuseError

    try:
        rates = drift_report(model, data, console)
    except OmnifuseError as exc:
        console.print("[bold red]error:[/bold red] ", end="")
        console.print(str(exc), markup=False, highlight=False, soft_wrap=True)
        return 2
    return 1 if any(r["drifted"] for r in rates.values()) else 0

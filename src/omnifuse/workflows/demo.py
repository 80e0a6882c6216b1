"""`omnifuse demo`: build a bundled table, train unimodal and fused models, compare, predict."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table as RichTable

from omnifuse.config.sections import Config
from omnifuse.encoders.base import PRETRAINED_FREEZE_EPOCHS, PRETRAINED_LR_MULT
from omnifuse.errors import DataError


@dataclass(frozen=True)
class DemoSpec:
    """A bundled demo: how to build its table and the config of each model it trains."""

    builder: str
    label: str
    columns: dict[str, dict[str, Any]]
    training: dict[str, Any]
    test_note: str
    fusion: str | dict[str, Any] = "attention"  # a fusion name, or a mapping with its options


# The defaults `omnifuse init-config` writes for this table (a residual small_cnn at 28 px, mfcc_stats, late
# fusion by a mean, the default training: EMA, augmentation, auxiliary heads, 40 epochs).
AV_DIGITS = DemoSpec(
    builder="av_digits",
    label="label",
    columns={
        "image": {"type": "image",
                  "encoder": {"name": "small_cnn", "size": 28, "channels": 1, "residual": True}},
        "audio": {"type": "audio", "encoder": {"name": "mfcc_stats", "max_seconds": 1.5}},
    },
    training={},
    test_note="test split: digits never seen in training, spoken with an accent never heard in training",
    fusion={"name": "late", "combine": "mean"},
)

_PRETRAINED = {"freeze_epochs": PRETRAINED_FREEZE_EPOCHS, "lr_mult": PRETRAINED_LR_MULT}
# The pretrained encoders as init-config writes them (frozen, lr_mult 0.05: their EncoderSpec) and the default
# training; EfficientNet at 64 px, not its 224, to keep the feature pass short on a CPU.
FASHION = DemoSpec(
    builder="fashion",
    label="label",
    columns={
        "image": {"type": "image", "encoder": {"name": "efficientnet_lite0", "size": 64, **_PRETRAINED}},
        "description": {"type": "text", "encoder": {"name": "hf_text", "max_length": 32, **_PRETRAINED}},
        "description_words": {"type": "text", "source": "description",  # init-config's lexical companion
                              "encoder": {"name": "tfidf"}},
    },
    training={},
    test_note="test split: Fashion-MNIST's own test pictures with fresh descriptions",
    fusion={"name": "late", "combine": "mean"},
)

DEMOS = {"av_digits": AV_DIGITS, "fashion": FASHION}


def demo_config(spec: DemoSpec, inputs: list[str]) -> Config:
    """The config of a model that reads only the table columns ``inputs`` and the entries whose ``source``
    is one of them; the other columns are ignored, the other derived entries left out."""
    read = {name: col.get("source", name) in inputs for name, col in spec.columns.items()}
    columns = {name: (col if read[name] else {"type": "ignore"})
               for name, col in spec.columns.items() if read[name] or "source" not in col}
    return Config.from_dict(
        {
            "label": {"column": spec.label, "task": "multiclass"},
            "columns": columns,
            "fusion": spec.fusion,
            "training": spec.training,
        }
    )


QUICK_SIZES = {"n_train": 60, "n_valid": 30, "n_test": 30}


def build_data(spec: DemoSpec, folder: Path, console: Console, progress: bool, quick: bool = False) -> Path:
    """Builds (or reuses) the demo's table folder with train.csv, valid.csv, test.csv."""
    from omnifuse.datasets import DATASETS

    console.print(f"[bold]Building the {spec.builder} table in {folder}[/bold] (reused when already there)")
    sizes: dict[str, Any] = QUICK_SIZES if quick else {}
    return Path(DATASETS[spec.builder](folder, progress=progress, **sizes))


def run_demo(
    name: str, out: Path, console: Console | None = None, progress: bool = True, quick: bool = False
) -> dict[str, float]:
    """Runs one demo end to end and returns {model name: test accuracy}.

    ``quick`` uses a tiny table and 2 epochs: a smoke run of the whole path, not a fair comparison.
    """
    import omnifuse

    console = console or Console()
    if name not in DEMOS:
        raise DataError(f"unknown demo dataset {name!r}; choose one of {', '.join(DEMOS)}")
    spec = DEMOS[name]
    if quick:
        spec = dataclasses.replace(spec, training={**spec.training, "epochs": 2})
    folder = out / "data" / (f"{name}_quick" if quick else name)
    data = build_data(spec, folder, console, progress, quick)
    inputs = sorted(name for name, col in spec.columns.items() if "source" not in col)
    fusion = spec.fusion if isinstance(spec.fusion, str) else spec.fusion["name"]
    runs = {f"{i}-only": [i] for i in inputs} | {f"fused ({fusion})": inputs}
    scores: dict[str, float] = {}
    seconds: dict[str, float] = {}
    for run_name, run_inputs in runs.items():
        console.rule(f"[bold]{run_name}")
        started = time.perf_counter()
        model_dir = out / "models" / name / run_name.split(" ")[0]
        omnifuse.train(
            demo_config(spec, run_inputs),
            train=data / "train.csv",
            valid=data / "valid.csv",
            out=model_dir,
            overwrite=True,
            progress=progress,
            console=console,
        )
        scores[run_name] = omnifuse.evaluate(
            model_dir, data / "test.csv", progress=progress, console=console
        )["accuracy"]
        seconds[run_name] = time.perf_counter() - started
    _print_summary(console, spec, scores, seconds, out / "models" / name / "fused", data)
    return scores


def _print_summary(
    console: Console,
    spec: DemoSpec, scores: dict[str, float], seconds: dict[str, float], fused_dir: Path, data: Path
) -> None:
    import pandas as pd

    import omnifuse

    table = RichTable(title=f"Test accuracy ({spec.test_note})")
    table.add_column("model")
    table.add_column("accuracy", justify="right")
    table.add_column("train + eval time", justify="right")
    for run, acc in scores.items():
        table.add_row(run, f"{acc:.3f}", f"{seconds[run]:.0f} s")
    console.print(table)
    fused = next(k for k in scores if k.startswith("fused"))
    best_single = max(v for k, v in scores.items() if k != fused)
    verdict = "wins" if scores[fused] > best_single else "does NOT win"
    console.print(f"Fusion {verdict}: {scores[fused]:.3f} vs best single modality {best_single:.3f}.")
    rows = pd.read_csv(data / "test.csv").head(5)
    predictor = omnifuse.load(fused_dir)
    shown = rows.assign(prediction=predictor.predict(rows.drop(columns=["label"]), base_dir=data))
    console.print(shown.to_string(index=False))
    console.print(
        f"\n[bold]Next:[/bold]\n  omnifuse evaluate --model {fused_dir} --data {data / 'test.csv'}\n"
        f"  omnifuse predict --model {fused_dir} --data {data / 'test.csv'} --out predictions.csv\n"
        f"  open {fused_dir / 'report.md'} (metrics and plots)\n"
        f"  omnifuse init-config --train {data / 'train.csv'} --label label  (start your own config)"
    )

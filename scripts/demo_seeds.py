"""The demo's models over several training seeds: test accuracy per seed, then mean and standard deviation.

Usage: python scripts/demo_seeds.py [--dataset av_digits] [--seeds 0 1 2] [--out runs/demo_seeds]

The table is the demo's own (built once, reused); each seed trains the image-only, audio-only (or text-only)
and fused models exactly as ``omnifuse demo`` does, with ``training.seed`` set to that seed.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from rich.console import Console

import omnifuse
from omnifuse.workflows.demo import DEMOS, build_data, demo_config


def seed_scores(dataset: str, seeds: list[int], out: Path, console: Console) -> dict[str, list[float]]:
    """{model name: [test accuracy for each seed]}."""
    spec = DEMOS[dataset]
    data = build_data(spec, out / "data" / dataset, console, progress=False)
    inputs = sorted(spec.columns)
    runs = {f"{i}-only": [i] for i in inputs} | {"fused": inputs}
    scores: dict[str, list[float]] = {name: [] for name in runs}
    for seed in seeds:
        for name, run_inputs in runs.items():
            folder = out / "models" / f"seed{seed}" / name
            omnifuse.train(demo_config(spec, run_inputs), train=data / "train.csv", valid=data / "valid.csv",
                           out=folder, overwrite=True, seed=seed, progress=False, console=Console(quiet=True))
            accuracy = omnifuse.evaluate(folder, data / "test.csv", progress=False,
                                         console=Console(quiet=True))["accuracy"]
            scores[name].append(float(accuracy))
            console.print(f"seed {seed} {name}: {accuracy:.3f}")
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="av_digits", choices=sorted(DEMOS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=Path("runs/demo_seeds"))
    args = parser.parse_args()
    console = Console()
    scores = seed_scores(args.dataset, args.seeds, args.out, console)
    console.print(f"\n| model | {' | '.join(f'seed {s}' for s in args.seeds)} | mean ± std |")
    console.print(f"|---|{'---|' * len(args.seeds)}---|")
    for name, values in scores.items():
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        cells = " | ".join(f"{v:.3f}" for v in values)
        console.print(f"| {name} | {cells} | {statistics.mean(values):.3f} ± {spread:.3f} |")


if __name__ == "__main__":
    main()

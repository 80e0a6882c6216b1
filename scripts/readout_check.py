"""The linear read-out figures of the README ("Defaults and why"): one AV-Digits draw, the init-config
defaults trained with ``readout.enabled`` true and false, and the classical baseline on the same rows.

Usage: python scripts/readout_check.py --seed S [--voice V] [--inputs audio|image,audio] [--train-seed K]
       [--out runs/readout]

Builds the draw (``build_av_digits(seed=S)``, with ``--voice`` as the only test voice), trains both models
(``omnifuse demo``'s config for those inputs), scores them on its test table and prints one JSON line: test
accuracy with and without the read-out, the read-out's blend weight, and the best baseline's test accuracy.
About 2 minutes on a 2-core CPU for audio alone.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console

import omnifuse
from omnifuse.baselines.standalone import run_baseline
from omnifuse.config.sections import Config
from omnifuse.datasets import build_av_digits
from omnifuse.datasets.av_digits import TRAIN_VOICES, VALID_VOICES
from omnifuse.workflows.demo import AV_DIGITS, demo_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--voice", default=None, help="the test split's espeak-ng voice, e.g. en-us+f3")
    parser.add_argument("--inputs", default="audio")
    parser.add_argument("--train-seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/readout"))
    args = parser.parse_args()
    quiet = Console(quiet=True)
    voices = None if args.voice is None else (TRAIN_VOICES, VALID_VOICES, (args.voice,))
    name = f"{args.seed}_{args.voice or 'default'}"
    table = build_av_digits(args.out / f"data/{name}", seed=args.seed, voices=voices, progress=False)
    inputs = args.inputs.split(",")
    result: dict[str, object] = {"seed": args.seed, "voice": args.voice, "inputs": inputs,
                                 "train_seed": args.train_seed}
    for enabled in (True, False):
        cfg = demo_config(AV_DIGITS, inputs).to_dict()
        cfg["training"]["seed"] = args.train_seed
        cfg["readout"] = {"enabled": enabled}
        folder = args.out / f"models/{name}/{'-'.join(inputs)}/{args.train_seed}/readout_{enabled}"
        omnifuse.train(Config.from_dict(cfg), table / "train.csv", table / "valid.csv", None, out=folder,
                       overwrite=True, progress=False, console=quiet)
        metrics = omnifuse.evaluate(folder, table / "test.csv", folder / "evaluation", progress=False,
                                    console=quiet)
        key = "readout_on" if enabled else "readout_off"
        result[key] = round(metrics["accuracy"], 4)
        if enabled:
            result["weight"] = metrics.get("readout", {}).get("weight")
            baselines = run_baseline(folder / "config.yaml", table / "train.csv", table / "valid.csv",
                                     table / "test.csv", args.out / f"baselines/{name}/{'-'.join(inputs)}",
                                     progress=False, console=quiet)
            best = next(r for r in baselines["results"] if r["name"] == baselines["best"])
            result["baseline"] = {"name": best["name"], "accuracy": round(best["accuracy"], 4)}
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()

"""The shift figures of the README ("Inputs out of their depth"): the demo's default models on one AV-Digits
draw, scored on its test table and on the same pictures with the digits spoken by flite.

Usage: python scripts/shift_check.py --seed S [--engine flite|festival] [--out runs/shift]
       [--drifted-columns drop|keep]

Builds the draw (``build_av_digits(seed=S)``) and its shifted table (``build_av_digits_shift``), trains the
fused, image-only and audio-only defaults (``omnifuse demo``'s configs), evaluates each with
``--shift-test`` and prints one line per model: test and shifted accuracy, and the shifted table's share of
flagged values per input (and whether it drifted). About 5 minutes on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console

import omnifuse
from omnifuse.config.sections import Config
from omnifuse.datasets import build_av_digits, build_av_digits_shift
from omnifuse.workflows.demo import AV_DIGITS, demo_config

MODELS = {"fused": ["image", "audio"], "image-only": ["image"], "audio-only": ["audio"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/shift"))
    parser.add_argument("--engine", choices=["flite", "festival"], default="flite")
    parser.add_argument("--drifted-columns", choices=["drop", "keep"], default="drop")
    args = parser.parse_args()
    quiet = Console(quiet=True)
    table = build_av_digits(args.out / f"data/av_digits_{args.seed}", seed=args.seed)
    shifted = build_av_digits_shift(table, args.out / f"data/av_digits_{args.seed}_{args.engine}",
                                    engine=args.engine)
    for name, inputs in MODELS.items():
        cfg = demo_config(AV_DIGITS, inputs).to_dict()
        cfg["ood"]["drifted_columns"] = args.drifted_columns
        folder = args.out / f"models/{args.seed}/{args.engine}/{name}"
        omnifuse.train(Config.from_dict(cfg), table / "train.csv", table / "valid.csv", None, out=folder,
                       overwrite=True,
                       progress=False, console=quiet)
        metrics = omnifuse.evaluate(folder, table / "test.csv", folder / "evaluation", progress=False,
                                    console=quiet, shift_test=shifted / "test.csv")
        shift = metrics["shift"]
        flags = {n: f"{r['flag_rate']:.1%}{' drifted' if r['drifted'] else ''}"
                 for n, r in shift.get("ood", {}).items()}
        print(json.dumps({"seed": args.seed, "engine": args.engine, "model": name, "test": round(metrics["accuracy"], 4),
                          "shifted": round(shift["accuracy"], 4), "shifted_flags": flags}), flush=True)


if __name__ == "__main__":
    main()

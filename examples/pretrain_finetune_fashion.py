"""Pretrain, then fine-tune, on the bundled tables (issue 7).

Fashion: contrastive pretraining of an image tower and a description tower on every training pair (no labels),
then an image classifier trained on 5% of the labels, once starting from the pretrained image tower
(``init_from``, at a tenth of the learning rate) and once from scratch, both scored on the same test split
(mean over three draws of the 5%).

AV-Digits (``--av-digits``): contrastive pretraining of spoken digit <-> handwritten digit image.

Both report class-level retrieval (precision@10: the share of the 10 nearest items of the other modality
that have the query's class; chance is 0.1) next to row-level recall@1. Row-level recall has a low ceiling
on these tables: only the class links a row's two columns (the colour in a description is made up, any
spoken "three" fits any written 3), so a query has ~100 equally right answers among 1000 test rows.

Run: ``python examples/pretrain_finetune_fashion.py [--out runs/pretrain] [--av-digits] [--quick]``
(a few minutes on 2 CPU cores; ``--quick`` is a smoke run on a tiny table).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import omnifuse
from omnifuse.config.sections import Config
from omnifuse.evaluation.retrieval import precision_at_k

IMAGE = {"name": "small_cnn", "size": 28, "channels": 1}
TEXT = {"name": "textcnn", "embed_dim": 64}


SEEDS = (0, 1, 2)


def pretrain_config(columns: dict[str, Any], epochs: int) -> Config:
    """Contrastive config over ``columns`` (no label), CLIP loss. Rows with identical content (the same
    vague description) are not each other's negatives (``ContrastiveTask.mask_duplicates``, on by
    default). A fixed schedule that keeps the final weights (``restore_best: false``, as CLIP trains):
    validation recall@1 is noisy here (see the module docstring), and stopping on it, or restoring its best
    epoch, ends with towers from the first few epochs, long before they have learnt the classes."""
    return Config.from_dict({
        "label": {"task": "contrastive"},
        "columns": columns,
        "contrastive": {"columns": sorted(columns), "embed_dim": 64, "queue_size": 0},
        "training": {"epochs": epochs, "batch_size": 64, "lr": 0.002, "patience": epochs,
                     "restore_best": False},
    })


def classifier_config(pretrained: Path | None, epochs: int, seed: int) -> Config:
    """Image-only classifier; with ``pretrained``, its encoder starts from that folder's image tower and
    learns at a tenth of the head's rate (``lr_mult``), so 100 labels refine it rather than overwrite it."""
    encoder = {**IMAGE, **({"init_from": str(pretrained), "lr_mult": 0.1} if pretrained else {})}
    return Config.from_dict({
        "label": {"column": "label", "task": "multiclass"},
        "columns": {"image": {"type": "image", "encoder": encoder}},
        "fusion": "concat",
        "training": {"epochs": epochs, "batch_size": 16, "lr": 0.002, "patience": 5, "seed": seed},
    })


def class_precision(model: Path, table: Path, columns: tuple[str, str]) -> dict[str, float]:
    """Class-level precision@10 in both directions on ``table`` (its ``label`` column; chance ~0.1)."""
    predictor = omnifuse.load(model)
    frame = pd.read_csv(table)
    a, b = (predictor.embed(frame, table.parent, column=c) for c in columns)
    labels = list(frame["label"])
    return {f"{columns[0]}->{columns[1]}/precision@10": precision_at_k(a @ b.T, labels, labels),
            f"{columns[1]}->{columns[0]}/precision@10": precision_at_k(b @ a.T, labels, labels)}


def fashion(out: Path, quick: bool) -> dict[str, Any]:
    """Pretrain on all Fashion pairs, fine-tune on 5% of the labels, against the same model from scratch."""
    from omnifuse.datasets import DATASETS

    sizes = {"n_train": 200, "n_valid": 60, "n_test": 100} if quick else {}
    data = Path(DATASETS["fashion"](out / "data" / "fashion", progress=False, **sizes))
    train = pd.read_csv(data / "train.csv")
    started = time.perf_counter()
    pre = out / "fashion_pretrained"
    columns = {"image": {"type": "image", "encoder": IMAGE}, "description": {"type": "text", "encoder": TEXT}}
    omnifuse.train(pretrain_config(columns, 2 if quick else 30), train=train.drop(columns=["label"]),
                   valid=data / "valid.csv", out=pre, overwrite=True, base_dir=data, progress=False)
    retrieval = omnifuse.evaluate(pre, data / "test.csv", out / "fashion_pretrained_eval", progress=False)
    scores: dict[str, Any] = {"pretrain_seconds": time.perf_counter() - started,
                              "pretrain_test_recall@1": retrieval["recall@1"],
                              **class_precision(pre, data / "test.csv", ("description", "image"))}
    accuracy: dict[str, list[float]] = {"from_scratch": [], "init_from_pretrained": []}
    for seed in SEEDS[:1] if quick else SEEDS:
        few = train.groupby("label").sample(frac=0.05, random_state=seed)  # stratified
        labelled = data / f"train_5pct_{seed}.csv"
        train.loc[sorted(few.index)].to_csv(labelled, index=False)
        scores["labelled_rows"] = len(few)
        for name, source in (("from_scratch", None), ("init_from_pretrained", pre)):
            folder = out / f"fashion_{name}"
            omnifuse.train(classifier_config(source, 3 if quick else 30, seed), train=labelled,
                           valid=data / "valid.csv", out=folder, overwrite=True, progress=False)
            accuracy[name].append(omnifuse.evaluate(folder, data / "test.csv", progress=False)["accuracy"])
    for name, values in accuracy.items():
        scores[f"{name}_test_accuracy"] = float(np.mean(values))
        scores[f"{name}_test_accuracy_per_seed"] = values
    return scores


def av_digits(out: Path, quick: bool) -> dict[str, Any]:
    """Spoken digit <-> handwritten digit image pretraining; test retrieval metrics."""
    from omnifuse.datasets import DATASETS

    sizes = {"n_train": 60, "n_valid": 30, "n_test": 30} if quick else {}
    data = Path(DATASETS["av_digits"](out / "data" / "av_digits", progress=False, **sizes))
    columns = {"image": {"type": "image", "encoder": IMAGE},
               "audio": {"type": "audio", "encoder": {"name": "mel_cnn", "n_mels": 40, "max_seconds": 1.5}}}
    folder = out / "av_digits_pretrained"
    config = pretrain_config(columns, 2 if quick else 30)
    train = pd.read_csv(data / "train.csv").drop(columns=["label"])  # pretraining sees no labels
    omnifuse.train(config, train=train, valid=data / "valid.csv", out=folder, overwrite=True, base_dir=data,
                   progress=False)
    metrics = omnifuse.evaluate(folder, data / "test.csv", progress=False)
    return {**{k: metrics[k] for k in ("recall@1", "recall@5", "recall@10", "mrr", "audio->image/recall@1",
                                       "image->audio/recall@1")},
            **class_precision(folder, data / "test.csv", ("audio", "image"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/pretrain"))
    parser.add_argument("--av-digits", action="store_true", help="also run the AV-Digits pretraining")
    parser.add_argument("--quick", action="store_true", help="tiny tables, few epochs: a smoke run")
    args = parser.parse_args()
    results = {"fashion": fashion(args.out, args.quick)}
    if args.av_digits:
        results["av_digits"] = av_digits(args.out, args.quick)
    print(json.dumps(results, indent=2))
    (args.out / "results.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

"""``omnifuse demo --dataset av_digits_qa`` (``make demo-chat``): a generation model answering questions
about a handwritten digit and a spoken one, trained from the table's LLaVA conversations with the config
``init-config`` writes, scored per question type against the classical floor on the same rows, then asked
a few questions through ``Predictor.chat``."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console
from rich.table import Table as RichTable

QUICK_SIZES = (48, 24, 24)  # train, valid, test rows of the --quick smoke run
SHOWN = 4  # chat examples printed at the end


def run_chat_demo(out: Path, console: Console | None = None, progress: bool = True,
                  quick: bool = False) -> dict[str, float]:
    """Builds the table, trains, evaluates; returns {question type (and "all"): test exact match}."""
    import omnifuse
    from omnifuse.data.io import read_table
    from omnifuse.datasets import build_av_digits_qa
    from omnifuse.workflows.init_config import build_generation_config, conversation_defaults

    console = console or Console()
    folder = out / "data" / ("av_digits_qa_quick" if quick else "av_digits_qa")
    console.print(f"[bold]Building the AV-Digits QA table in {folder}[/bold] (reused when already there)")
    if quick:
        data = Path(build_av_digits_qa(folder, n_train=QUICK_SIZES[0], n_valid=QUICK_SIZES[1],
                                       n_test=QUICK_SIZES[2], progress=progress))
    else:  # the builder's own sizes
        data = Path(build_av_digits_qa(folder, progress=progress))
    table = read_table(data / "train_conversations.jsonl")
    label, prompt = conversation_defaults(table, None, None)
    assert label is not None, "the conversations table has its answer column"
    config, _ = build_generation_config(table, label, None, prompt)
    if quick:
        config = dataclasses.replace(config, training=dataclasses.replace(config.training, epochs=2))
    model_dir = out / "models" / "av_digits_qa"
    started = time.perf_counter()
    omnifuse.train(config, data / "train_conversations.jsonl", valid=data / "valid_conversations.jsonl",
                   out=model_dir, overwrite=True, progress=progress, console=console)
    seconds = time.perf_counter() - started
    predictor = omnifuse.load(model_dir)
    test = pd.read_csv(data / "test.csv", dtype=str, keep_default_na=False)
    written = predictor.generate(data / "test_conversations.jsonl", base_dir=data)
    scores = _scores(test, written)
    floor = _floor(data, console)
    _print_scores(console, scores, floor, seconds)
    _print_chats(console, predictor, test, data)
    return scores


def _scores(test: pd.DataFrame, written: list[str]) -> dict[str, float]:
    from omnifuse.generation.evaluate import normalize

    hits = pd.Series([normalize(w) == normalize(a) for w, a in zip(written, test["answer"], strict=True)])
    by_type = hits.groupby(test["question_type"]).mean()
    return {"all": float(hits.mean()), **{str(k): float(v) for k, v in by_type.items()}}


def _floor(data: Path, console: Console) -> dict[str, float]:
    """The classical baseline's exact match on the same rows (``baselines.qa``)."""
    from omnifuse.baselines.qa import qa_baseline

    console.print("Fitting the classical baseline on the same rows (pixels + HOG, MFCC; logistic regression)")
    test = qa_baseline(data)
    by_type = test.groupby("question_type")["hit"].mean()
    return {"all": float(test["hit"].mean()), **{str(k): float(v) for k, v in by_type.items()}}


def _print_scores(console: Console, scores: dict[str, float], floor: dict[str, float],
                  seconds: float) -> None:
    grid = RichTable(title=f"AV-Digits QA, test exact match (trained in {seconds:.0f} s)")
    for column in ("question type", "generation model", "classical baseline"):
        grid.add_column(column)
    for kind in scores:
        grid.add_row(kind, f"{scores[kind]:.3f}", f"{floor.get(kind, float('nan')):.3f}")
    console.print(grid)
    if scores["all"] < floor["all"]:
        console.print("[yellow]The generation model is below the classical baseline on these rows[/yellow] "
                      "(README, \"Generation\": not yet a good model).")


def _print_chats(console: Console, predictor: Any, test: pd.DataFrame, data: Path) -> None:
    console.rule("[bold]Predictor.chat on test rows")
    for _, row in test.head(SHOWN).iterrows():
        media = {"image": data / row["image"], "audio": data / row["audio"]}
        answer = predictor.chat([{"role": "user", "content": row["question"]}], media)
        console.print(f"{row['image']} + {row['audio']}: {row['question']} -> {answer!r} "
                      f"(expected {row['answer']!r})")
    console.print("Chat with it: omnifuse chat --model <out>/models/av_digits_qa --image IMG --audio WAV")

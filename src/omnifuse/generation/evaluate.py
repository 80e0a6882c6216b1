"""A generation model's report: teacher-forced loss and perplexity, and the answers it writes scored
against the targets (exact match), with a table of examples."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omnifuse.data.collate import Example, batches
from omnifuse.evaluation.report import write_report
from omnifuse.tasks.generation import IGNORE, GenerationTask
from omnifuse.training.batched_forward import run_model

if TYPE_CHECKING:
    from omnifuse.inference.predictor import Predictor

SHOWN = 10  # examples in the report's table
_SPACE = re.compile(r"\s+")
_PUNCTUATION = re.compile(r"[^\w\s]")


def normalize(text: str) -> str:
    """Lower case, punctuation removed, runs of spaces as one: what exact match compares."""
    return _SPACE.sub(" ", _PUNCTUATION.sub(" ", text.lower())).strip()


def references(task: GenerationTask, examples: list[Example],
               texts: Mapping[Any, Any] | None = None) -> list[str]:
    """Each row's target text: ``texts[row number]`` (the table's label column) when given, else as the
    tokenizer spells the encoded target (a word unseen in training then reads <unk>)."""
    out = []
    for example in examples:
        if texts is not None:
            out.append(str(texts[example.index]))
            continue
        assert example.target is not None, "evaluation examples carry targets"
        out.append(task.decode_ids([int(i) for i in example.target.tolist() if i != IGNORE]))
    return out


def generation_scores(predicted: list[str], reference: list[str]) -> dict[str, Any]:
    """``exact_match`` (normalised), ``mean_words`` generated and the number of ``rows``."""
    pairs = list(zip(predicted, reference, strict=True))
    matches = sum(normalize(p) == normalize(r) for p, r in pairs)
    words = sum(len(p.split()) for p in predicted)
    return {"exact_match": matches / max(len(pairs), 1), "mean_words": words / max(len(pairs), 1),
            "rows": len(pairs)}


def text_scores(predicted: list[str], reference: list[str]) -> dict[str, Any]:
    """BLEU-1..4, ROUGE-L, CIDEr-D and VQA accuracy (``evaluation.generation_metrics``); {} without the
    ``generation`` extra (exact match is reported either way)."""
    from omnifuse.errors import MissingExtraError
    from omnifuse.evaluation.generation_metrics import generation_metrics

    try:
        scores = generation_metrics(predicted, reference)
    except MissingExtraError:
        return {}
    return {k: v for k, v in scores.items() if k not in ("exact_match", "mean_length")}


def evaluate_generation(predictor: Predictor, examples: list[Example], out: Path, title: str,
                        history: list[dict[str, Any]] | None = None,
                        texts: Mapping[Any, Any] | None = None) -> dict[str, Any]:
    """Metrics of ``examples`` (teacher-forced and generated) and ``out/report.md``; ``texts``: the label
    column of their table, which the written texts are scored against (see ``references``)."""
    task = predictor.task
    assert isinstance(task, GenerationTask), "a generation model's task"
    outputs, targets, _ = run_model(predictor.model, batches(examples, predictor.batch_size),
                                    predictor.device)
    assert targets is not None, "evaluation examples carry targets"
    metrics = task.metrics(outputs, targets)
    written = predictor.generate_examples(examples)
    wanted = references(task, examples, texts)
    metrics |= generation_scores(written, wanted)
    metrics |= text_scores(written, wanted)
    rows = ["| row | target | generated |", "|---|---|---|"]
    rows += [f"| {e.index} | {_cell(w)} | {_cell(g)} |"
             for e, w, g in list(zip(examples, wanted, written, strict=True))[:SHOWN]]
    write_report(out, metrics, task, title=title, history=history,
                 extra_sections={"Examples": "\n".join(rows)})
    return metrics


def _cell(text: str) -> str:
    return text.replace("|", "\\|") or "(empty)"

"""Scores of generated texts against references: BLEU-1..4 (sacrebleu), ROUGE-L (rouge-score), CIDEr-D
(pycocoevalcap's scorer), exact match and VQA accuracy with the VQA answer normalisation.

All scores are in [0, 1] except CIDEr-D (its usual scale, about 0..10). Each prediction may have one or
several references.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from omnifuse.errors import DataError, MissingExtraError

EXTRA = "pip install 'omnifuse[generation]'"
_NUMBERS = {"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
            "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10"}
_ARTICLES = {"a", "an", "the"}
_PUNCTUATION = re.compile(r"[^\w\s']")
_WORDS = re.compile(r"\w+")


def answer_normalize(text: str) -> str:
    """VQA-style: lower case, punctuation removed, number words as digits, articles dropped."""
    words = _PUNCTUATION.sub(" ", text.lower()).replace("'", "").split()
    return " ".join(_NUMBERS.get(w, w) for w in words if w not in _ARTICLES)


def _as_lists(predictions: Sequence[str], references: Sequence[Any]) -> list[list[str]]:
    if len(predictions) != len(references):
        raise DataError(f"{len(predictions)} prediction(s) but {len(references)} reference row(s); pass one "
                        "reference (or a list of them) per prediction")
    if not predictions:
        raise DataError("no predictions to score; pass at least one row")
    return [[r] if isinstance(r, str) else [str(x) for x in r] for r in references]


def _bleu(predictions: Sequence[str], refs: list[list[str]]) -> dict[str, float]:
    try:
        from sacrebleu.metrics import BLEU
    except ImportError as err:
        raise MissingExtraError(f"BLEU needs sacrebleu: {EXTRA}") from err
    most = max(len(r) for r in refs)
    streams = [[r[i] if i < len(r) else r[0] for r in refs] for i in range(most)]  # sacrebleu: per stream
    return {f"bleu_{n}": BLEU(max_ngram_order=n).corpus_score(list(predictions), streams).score / 100
            for n in range(1, 5)}


def _rouge_l(predictions: Sequence[str], refs: list[list[str]]) -> float:
    try:
        from rouge_score import rouge_scorer
    except ImportError as err:
        raise MissingExtraError(f"ROUGE-L needs rouge-score: {EXTRA}") from err
    scorer = rouge_scorer.RougeScorer(["rougeL"])
    pairs = zip(predictions, refs, strict=True)
    best = [max(scorer.score(r, p)["rougeL"].fmeasure for r in rs) for p, rs in pairs]
    return sum(best) / len(best)


def _cider_d(predictions: Sequence[str], refs: list[list[str]]) -> float:
    """pycocoevalcap's CIDEr-D on lower-cased word tokens (its PTB tokenizer needs Java; not used)."""
    try:
        from pycocoevalcap.cider.cider import Cider
    except ImportError as err:
        raise MissingExtraError(f"CIDEr-D needs pycocoevalcap: {EXTRA}") from err

    def tokens(text: str) -> str:
        return " ".join(_WORDS.findall(text.lower()))

    gts = {i: [tokens(r) for r in rs] for i, rs in enumerate(refs)}
    res = {i: [tokens(p)] for i, p in enumerate(predictions)}
    if not any(r for rs in gts.values() for r in rs):
        return 0.0  # no reference word at all: nothing to match (the scorer fails on an empty vocabulary)
    score, _ = Cider().compute_score(gts, res)
    return float(score)


def vqa_accuracy(prediction: str, references: Sequence[str]) -> float:
    """min(#references equal to the prediction / 3, 1), averaged over the leave-one-out subsets of the
    references as the official VQA evaluation does with its 10 answers (normalised answers)."""
    answer = answer_normalize(prediction)
    normalized = [answer_normalize(r) for r in references]
    if len(normalized) == 1:
        return float(normalized[0] == answer)
    scores = [min(sum(a == answer for j, a in enumerate(normalized) if j != i) / 3, 1.0)
              for i in range(len(normalized))]
    return sum(scores) / len(scores)


def generation_metrics(predictions: Sequence[str], references: Sequence[Any]) -> dict[str, float]:
    """``bleu_1``..``bleu_4``, ``rouge_l``, ``cider_d``, ``exact_match``, ``vqa_accuracy`` and
    ``mean_length`` (words) of ``predictions`` against ``references`` (a string or a list per row).

    Raises:
        DataError: no rows, or not one reference entry per prediction. MissingExtraError: a scorer's
            package is not installed.
    """
    refs = _as_lists(predictions, references)
    pairs = list(zip(predictions, refs, strict=True))
    exact = [any(answer_normalize(p) == answer_normalize(r) for r in rs) for p, rs in pairs]
    metrics = _bleu(predictions, refs)
    metrics |= {
        "rouge_l": _rouge_l(predictions, refs),
        "cider_d": _cider_d(predictions, refs),
        "exact_match": sum(exact) / len(exact),
        "vqa_accuracy": sum(vqa_accuracy(p, rs) for p, rs in pairs) / len(pairs),
        "mean_length": sum(len(p.split()) for p in predictions) / len(predictions),
    }
    return metrics

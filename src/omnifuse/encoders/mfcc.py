"""``mfcc_stats``: MFCCs and their deltas summarised over time, then a small MLP.

The classical speech front-end (Davis & Mermelstein 1980) as an encoder: a fixed DCT turns log-mel frames
into cepstral coefficients, frame differences add their deltas, and each clip is summarised by the mean and
standard deviation of every coefficient plus the means over ``segments`` equal stretches of the clip (a coarse
picture of how the word unfolds). A few thousand numbers per clip become a few hundred that a linear model
already separates well, so the MLP on top has little to over-fit on small tables.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from omnifuse.config.parsing import bounded, fraction, non_negative, positive
from omnifuse.data.preprocess.base import Preprocessor
from omnifuse.encoders.audio import LogMelOptions, make_logmel
from omnifuse.encoders.base import ENCODERS, Encoder, EncoderOutput, EncoderSpec
from omnifuse.errors import ConfigError


@dataclass
class MFCCStatsOptions(LogMelOptions):
    """Options of ``mfcc_stats`` (the log-mel options with a longer window and fewer bands, as MFCCs use)."""

    n_mels: int = positive(40)  # mel bins (HTK mel scale, 0 Hz to Nyquist)
    win_ms: float = bounded(64.0, low=0.001)  # STFT window in milliseconds (64 ms beat 25 ms on AV-Digits)
    n_mfcc: int = positive(20)  # cepstral coefficients kept (of n_mels)
    segments: int = positive(10)  # equal stretches of each clip whose mean coefficients are kept
    hidden_dim: int = non_negative(256)  # width of the MLP's hidden layer; 0: one linear layer
    output_dim: int = positive(128)  # width of the pooled vector and the segment tokens
    # Dropout 0.5, input_dropout and hidden_dim 0 were measured on eight AV-Digits draws and landed within
    # noise of these defaults (README "Defaults and why": on unseen voices the learner, not the features,
    # loses)
    dropout: float = fraction(0.2)  # dropout in the MLP
    input_dropout: float = fraction(0.0)  # dropout on the standardised summary features


def dct_matrix(n_mels: int, n_mfcc: int) -> Tensor:
    """(n_mels, n_mfcc) orthonormal DCT-II: ``log_mel @ D`` gives the MFCCs."""
    n = torch.arange(n_mels, dtype=torch.float64)[:, None]  # (M, 1)
    k = torch.arange(n_mfcc, dtype=torch.float64)[None, :]  # (1, K)
    basis = torch.cos(math.pi / n_mels * (n + 0.5) * k) * math.sqrt(2.0 / n_mels)  # (M, K)
    basis[:, 0] /= math.sqrt(2.0)
    return basis.float()


def segment_means(x: Tensor, mask: Tensor, segments: int) -> Tensor:
    """Mean of x (B, T, D) over each of ``segments`` equal stretches of every row's real frames -> (B, S, D).

    Real frames come first in each row; a stretch shorter than a frame takes the frame it falls in.
    """
    lengths = mask.sum(dim=1).clamp(min=1).to(x.dtype)  # (B,)
    steps = torch.arange(x.shape[1], device=x.device, dtype=x.dtype)[None, :]  # (1, T)
    position = steps / lengths[:, None] * segments  # (B, T): which stretch each frame is in
    segment = position.floor().clamp(max=segments - 1)  # (B, T)
    onehot = (segment[:, :, None] == torch.arange(segments, device=x.device)[None, None, :])  # (B, T, S)
    weights = (onehot & mask[:, :, None]).to(x.dtype)  # (B, T, S)
    totals = torch.einsum("bts,btd->bsd", weights, x)  # (B, S, D)
    counts = weights.sum(dim=1)[:, :, None]  # (B, S, 1)
    # a clip shorter than `segments` frames: empty stretches take the whole clip's mean
    whole = totals.sum(dim=1, keepdim=True) / counts.sum(dim=1, keepdim=True).clamp(min=1)  # (B, 1, D)
    return torch.where(counts > 0, totals / counts.clamp(min=1), whole)


class MFCCStats(Encoder):
    """MFCC + delta statistics of a clip, through an MLP.

    Args:
        n_mels: mel bins of the input frames.
        n_mfcc: coefficients kept.
        segments: stretches of the clip summarised by their mean.
        hidden_dim: hidden width of the MLP.
        output_dim: the pooled width.
        dropout: dropout in the MLP.

    Inputs:
        mel: (B, T, n_mels) log-mel frames; mask: (B, T) bool.

    Returns:
        EncoderOutput(pooled (B, D), tokens (B, segments, D): one per stretch, mask (B, segments)).
    """

    dct: Tensor  # (n_mels, n_mfcc) buffer

    def __init__(self, n_mels: int, n_mfcc: int, segments: int, hidden_dim: int, output_dim: int,
                 dropout: float, input_dropout: float = 0.0) -> None:
        super().__init__()
        self.register_buffer("dct", dct_matrix(n_mels, n_mfcc), persistent=False)
        self.segments = segments
        width = 2 * n_mfcc  # coefficients and their deltas
        summary = width * (2 + segments)  # mean, std and the segment means
        self.norm = nn.BatchNorm1d(summary, affine=False)  # the features' scales differ a lot
        layers: list[nn.Module] = [nn.Dropout(input_dropout)] if input_dropout > 0 else []
        if hidden_dim > 0:
            layers += [nn.Linear(summary, hidden_dim), nn.GELU(), nn.Dropout(dropout)]
        self.mlp = nn.Sequential(*layers, nn.Linear(hidden_dim or summary, output_dim))
        self.token_proj = nn.Linear(width, output_dim)
        self.output_dim = output_dim
        self.linear_dim = summary

    def forward(self, inputs: dict[str, Tensor]) -> EncoderOutput:
        """Encodes a batch of log-mel frames; see the class docstring."""
        summary, segs = self._summarise(inputs)  # (B, 2K * (2 + S)), (B, S, 2K)
        pooled = self.mlp(self.norm(summary))  # (B, D)
        tokens = self.token_proj(segs)  # (B, S, D)
        has_audio = inputs["mask"].bool().any(dim=1, keepdim=True)  # (B, 1)
        token_mask = has_audio.expand(-1, self.segments)  # (B, S)
        return EncoderOutput(pooled * has_audio.to(pooled.dtype), tokens, token_mask)

    def linear_features(self, inputs: dict[str, Tensor]) -> Tensor:
        """(B, 2K * (2 + S)) the clip summary the MLP reads (mean, std, segment means), before its scaling."""
        return self._summarise(inputs)[0]

    def _summarise(self, inputs: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """The (B, 2K * (2 + S)) summary and the (B, S, 2K) segment means of log-mel frames."""
        mel, mask = inputs["mel"], inputs["mask"].bool()  # (B, T, M), (B, T)
        weights = mask.unsqueeze(-1).to(mel.dtype)  # (B, T, 1)
        mfcc = (mel @ self.dct) * weights  # (B, T, K)
        delta = torch.diff(mfcc, dim=1, prepend=mfcc[:, :1]) * weights  # (B, T, K)
        feats = torch.cat([mfcc, delta], dim=-1)  # (B, T, 2K)
        count = weights.sum(dim=1).clamp(min=1.0)  # (B, 1)
        mean = feats.sum(dim=1) / count  # (B, 2K)
        std = ((((feats - mean[:, None]) * weights) ** 2).sum(dim=1) / count).clamp(min=1e-8).sqrt()
        segs = segment_means(feats, mask, self.segments)  # (B, S, 2K)
        return torch.cat([mean, std, segs.flatten(1)], dim=-1), segs


def _build(options: MFCCStatsOptions, preprocessor: Preprocessor, assets: object) -> Encoder:
    problems = []
    if not 1 <= options.n_mfcc <= options.n_mels:
        problems.append(f"mfcc_stats.n_mfcc: must be in [1, n_mels={options.n_mels}], got {options.n_mfcc}")
    if options.segments < 1:
        problems.append(f"mfcc_stats.segments: must be >= 1, got {options.segments}")
    if problems:
        raise ConfigError(problems)
    return MFCCStats(options.n_mels, options.n_mfcc, options.segments, options.hidden_dim,
                     options.output_dim, options.dropout, options.input_dropout)


ENCODERS.add(
    "mfcc_stats",
    EncoderSpec(
        modality="audio",
        options=MFCCStatsOptions,
        make_preprocessor=make_logmel,
        build=_build,
        summary="MFCCs + deltas summarised over time (mean, std, segment means), then an MLP",
        # SpecAugment's stripes corrupt the clip statistics this encoder reads; tempo alone helped. freq_warp
        # won on two development draws (+0.06 with an unseen female test voice) and lost on two fresh ones
        # (-0.015, -0.040): not a default (README "Defaults and why")
        augment={"tempo": {}},
    ),
)

"""Audio encoders: a small CNN and a BiLSTM over log-mel frames, and Hugging Face audio models.

Registered as ``mel_cnn``, ``mel_lstm`` and ``hf_audio``. The mel encoders honour the frame mask
exactly: padding a row with extra zero frames does not change its outputs (in eval mode).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from omnifuse.config.parsing import bounded, fraction, positive
from omnifuse.data.preprocess.audio import LogMelPreprocessor, WaveformPreprocessor
from omnifuse.data.preprocess.base import Preprocessor
from omnifuse.encoders.base import (
    ENCODERS,
    Encoder,
    EncoderOutput,
    EncoderSpec,
    InputSpec,
    as_channels_last,
    freeze,
    masked_mean,
    pick_device_dtype,
    use_channels_last,
)
from omnifuse.encoders.hf_adapters import enable_gradient_checkpointing


@dataclass
class LogMelOptions:
    """The log-mel preprocessing options shared by ``mel_cnn`` and ``mel_lstm``."""

    sample_rate: int = positive(16000)  # audio is resampled to this rate (Hz)
    n_mels: int = positive(64)  # mel bins (HTK mel scale, 0 Hz to Nyquist)
    win_ms: float = bounded(25.0, low=0.001)  # STFT window length in milliseconds
    hop_ms: float = bounded(10.0, low=0.001)  # hop between frames in milliseconds (100 frames per second)
    n_fft: int | None = None  # FFT size; None: next power of 2 >= the window
    max_seconds: float = bounded(10.0, low=0.001)  # clips are cropped to their first max_seconds
    normalize: bool = True  # per-utterance mean/variance normalisation of the log-mel values


@dataclass
class MelCNNOptions(LogMelOptions):
    """Options of ``mel_cnn``."""

    channels: int = positive(32)  # channels of the first conv block (doubled in the later blocks)
    num_blocks: int = positive(3)  # conv blocks, each halving time and frequency
    output_dim: int = positive(128)  # width of the frame tokens and of the pooled vector
    pooling: Literal["mean", "max"] = "max"  # masked pooling over time; max picks out short words in noise
    dropout: float = fraction(0.1)  # dropout on the frame tokens
    channels_last: bool = True  # NHWC memory format: faster convolutions on a CPU (same results)


@dataclass
class MelLSTMOptions(LogMelOptions):
    """Options of ``mel_lstm``."""

    stack_frames: int = positive(4)  # consecutive frames concatenated into one LSTM step (shorter sequences)
    hidden_dim: int = positive(128)  # LSTM hidden size per direction; the output width is 2 * hidden_dim
    num_layers: int = positive(1)  # stacked BiLSTM layers
    dropout: float = fraction(0.1)  # dropout between LSTM layers and on the outputs


@dataclass
class HFAudioOptions:
    """Options of ``hf_audio``."""

    model: str = "facebook/wav2vec2-base"  # hub name or local folder: wav2vec2, HuBERT or Whisper
    pooling: Literal["mean", "cls"] = "mean"  # masked mean over frames, or the first frame
    max_seconds: float = bounded(10.0, low=0.001)  # clips are cropped to their first seconds (Whisper: <= 30)
    freeze_feature_encoder: bool = True  # wav2vec2/HuBERT: keep the CNN feature encoder fixed
    gradient_checkpointing: bool = False  # recompute activations in backward: less memory, ~30% slower


def make_logmel(options: LogMelOptions, spec: InputSpec | None = None) -> LogMelPreprocessor:
    """The log-mel preprocessor for the mel encoders' options."""
    return LogMelPreprocessor(
        sample_rate=options.sample_rate,
        n_mels=options.n_mels,
        win_ms=options.win_ms,
        hop_ms=options.hop_ms,
        n_fft=options.n_fft,
        max_seconds=options.max_seconds,
        normalize=options.normalize,
    )


def pad_time(x: Tensor, mask: Tensor, multiple: int) -> tuple[Tensor, Tensor]:
    """Zero-pads frames (B, T, M) and mask (B, T) so that T is a multiple of ``multiple``."""
    extra = -x.shape[1] % multiple
    if extra:
        x = F.pad(x, (0, 0, 0, extra))  # (B, T + extra, M)
        mask = F.pad(mask, (0, extra), value=False)  # (B, T + extra)
    return x, mask


def downsample_mask(mask: Tensor, factor: int) -> Tensor:
    """(B, T) -> (B, T // factor): a coarse frame is real when any of its fine frames is."""
    return mask.unflatten(1, (-1, factor)).any(dim=-1)  # (B, T // factor)


class MelCNN(Encoder):
    """A small 2-D CNN over the log-mel image (B, 1, T, n_mels); frame tokens pooled with the mask.

    Each block is conv 3x3 -> batch norm -> ReLU -> 2x2 max pool. Padded frames are zeroed after every
    block and time is padded to a multiple of the total stride, so a row's real tokens do not depend on
    how much padding the batch added (exact in eval mode; in training, batch norm statistics see it).

    Args:
        n_mels: mel bins of the input.
        channels: channels of the first block (later blocks use twice as many).
        num_blocks: conv blocks, each halving time and frequency.
        output_dim: token and pooled width.
        pooling: "mean" or "max" over the real tokens.
        dropout: dropout on the tokens.

    Inputs:
        mel: (B, T, n_mels) float; mask: (B, T) bool.

    Returns:
        EncoderOutput(pooled (B, D), tokens (B, T', D), mask (B, T')) with T' = ceil(T / 2**num_blocks).
    """

    def __init__(
        self,
        n_mels: int,
        channels: int = 32,
        num_blocks: int = 3,
        output_dim: int = 128,
        pooling: str = "mean",
        dropout: float = 0.1,
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        widths = [1] + [channels * (1 if i == 0 else 2) for i in range(num_blocks)]
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU())
            for c_in, c_out in zip(widths[:-1], widths[1:], strict=True)
        )
        self.pool = nn.MaxPool2d(2, ceil_mode=True)
        self.proj = nn.Linear(widths[-1], output_dim)
        self.dropout = nn.Dropout(dropout)
        self.pooling = pooling
        self.output_dim = output_dim
        self.channels_last = channels_last
        use_channels_last(self, channels_last)

    def forward(self, inputs: dict[str, Tensor]) -> EncoderOutput:
        """Encodes a batch of log-mel frames; see the class docstring."""
        mel, mask = inputs["mel"], inputs["mask"].bool()  # (B, T, M), (B, T)
        mel, mask = pad_time(mel * mask.unsqueeze(-1), mask, 2 ** len(self.blocks))
        x = as_channels_last(mel.unsqueeze(1), self.channels_last)  # (B, 1, T, M)
        for block in self.blocks:
            x = block(x) * mask[:, None, :, None]  # (B, C, T, M'), padded frames back to 0
            x = self.pool(x)  # (B, C, T / 2, M' / 2)
            mask = downsample_mask(mask, 2)  # (B, T / 2)
        frames = x.mean(dim=3).transpose(1, 2)  # (B, T', C)
        tokens = self.dropout(self.proj(frames))  # (B, T', D)
        return EncoderOutput(pool_tokens(tokens, mask, self.pooling), tokens, mask)


def pool_tokens(tokens: Tensor, mask: Tensor, pooling: str) -> Tensor:
    """Masked mean, masked max or first token of (B, T, D) -> (B, D); all-padding rows give 0."""
    if pooling == "mean":
        return masked_mean(tokens, mask)
    if pooling == "cls":
        return tokens[:, 0] * mask[:, :1].to(tokens.dtype)  # (B, D)
    filled = tokens.masked_fill(~mask.unsqueeze(-1), float("-inf"))  # (B, T, D)
    return torch.where(mask.any(dim=1, keepdim=True), filled.amax(dim=1), torch.zeros_like(tokens[:, 0]))


class MelLSTM(Encoder):
    """A bidirectional LSTM over log-mel frames (packed by the mask), pooled by masked mean.

    ``stack_frames`` consecutive frames are concatenated into one step, which shortens the sequence the
    LSTM walks (a 10 s clip has 1001 frames at the default hop).

    Args:
        n_mels: mel bins of the input.
        hidden_dim: hidden size per direction.
        num_layers: stacked layers.
        stack_frames: frames per LSTM step.
        dropout: between layers and on the outputs.

    Inputs:
        mel: (B, T, n_mels) float; mask: (B, T) bool.

    Returns:
        EncoderOutput(pooled (B, 2H), tokens (B, T', 2H), mask (B, T')) with T' = ceil(T / stack_frames).
    """

    def __init__(
        self,
        n_mels: int,
        hidden_dim: int = 128,
        num_layers: int = 1,
        stack_frames: int = 4,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.stack_frames = stack_frames
        self.lstm = nn.LSTM(
            n_mels * stack_frames,
            hidden_dim,
            num_layers=num_layers,
            batch_first=True,
            bidirectional=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.dropout = nn.Dropout(dropout)
        self.output_dim = 2 * hidden_dim

    def forward(self, inputs: dict[str, Tensor]) -> EncoderOutput:
        """Encodes a batch of log-mel frames; see the class docstring."""
        mel, mask = inputs["mel"], inputs["mask"].bool()  # (B, T, M), (B, T)
        mel, mask = pad_time(mel * mask.unsqueeze(-1), mask, self.stack_frames)
        steps = mel.flatten(2).unflatten(1, (-1, self.stack_frames)).flatten(2)  # (B, T', k * M)
        mask = downsample_mask(mask, self.stack_frames)  # (B, T')
        # Real frames come first in each row, so the count of real steps is the packed length.
        lengths = mask.sum(dim=1).clamp(min=1).cpu()  # (B,)
        packed = pack_padded_sequence(steps, lengths, batch_first=True, enforce_sorted=False)
        out, _ = self.lstm(packed)
        tokens, _ = pad_packed_sequence(out, batch_first=True, total_length=steps.shape[1])  # (B, T', 2H)
        tokens = self.dropout(tokens)
        return EncoderOutput(masked_mean(tokens, mask), tokens, mask)


class HFAudio(Encoder):
    """A Hugging Face audio encoder: wav2vec2 / HuBERT (``last_hidden_state``) or Whisper's encoder.

    wav2vec2: https://arxiv.org/abs/2006.11477, HuBERT: https://arxiv.org/abs/2106.07447,
    Whisper: https://arxiv.org/abs/2212.04356. The sample (or Whisper frame) mask is turned into a
    token mask with the model's ``_get_feat_extract_output_lengths``; the attention mask is passed to
    waveform models whose feature encoder uses layer norm (those trained with padding; the group-norm
    "base" models expect zero padding and no mask, as their model cards say).

    Args:
        model: the backbone (a ``Wav2Vec2Model``, ``HubertModel`` or ``WhisperEncoder``).
        pooling: "mean" over real tokens or "cls" (the first token).

    Inputs:
        input_values: (B, S) float and mask (B, S) bool (wav2vec2 / HuBERT), or
        input_features: (B, n_mels, 3000) float and mask (B, 3000) bool (Whisper).

    Returns:
        EncoderOutput(pooled (B, D), tokens (B, T', D), mask (B, T')).
    """

    def __init__(self, model: nn.Module, pooling: str = "mean") -> None:
        super().__init__()
        self.model = model
        self.pooling = pooling
        self.config: Any = cast(Any, model).config  # a transformers PretrainedConfig
        self.output_dim = int(self.config.hidden_size)

    def forward(self, inputs: dict[str, Tensor]) -> EncoderOutput:
        """Runs the backbone; see the class docstring."""
        _, dtype = pick_device_dtype(self.model)
        mask = inputs["mask"].bool()  # (B, S)
        if "input_features" in inputs:
            hidden = self.model(input_features=inputs["input_features"].to(dtype)).last_hidden_state
        else:
            use_mask = getattr(self.config, "feat_extract_norm", "layer") == "layer"
            hidden = self.model(
                input_values=inputs["input_values"].to(dtype),
                attention_mask=mask.long() if use_mask else None,
            ).last_hidden_state  # (B, T', D)
        token_mask = self.token_mask(mask, hidden.shape[1])  # (B, T')
        return EncoderOutput(pool_tokens(hidden, token_mask, self.pooling), hidden, token_mask)

    def token_mask(self, mask: Tensor, num_tokens: int) -> Tensor:
        """Input mask (B, S) -> token mask (B, T'), from the real input length of each row."""
        lengths = mask.sum(dim=1)  # (B,)
        to_frames = getattr(self.model, "_get_feat_extract_output_lengths", None)
        if to_frames is not None:
            frames = to_frames(lengths)
        else:
            frames = torch.ceil(lengths * num_tokens / max(mask.shape[1], 1))
        frames = torch.where(lengths > 0, frames.clamp(min=1), torch.zeros_like(frames))  # (B,)
        return torch.arange(num_tokens, device=mask.device)[None, :] < frames[:, None]  # (B, T')

    def save_assets(self, folder: Path) -> None:
        """Writes the backbone's ``config.json`` (the whole model's, for Whisper)."""
        self.config.save_pretrained(str(folder))


def load_hf_audio_backbone(model: str, assets: Path | None) -> nn.Module:
    """Pretrained weights from the hub name / folder, or the bare architecture from saved assets.

    Encoder-decoder models (Whisper) keep their encoder only.
    """
    from transformers import AutoConfig, AutoModel

    if assets is None:
        backbone = AutoModel.from_pretrained(model)
    else:
        backbone = AutoModel.from_config(AutoConfig.from_pretrained(str(assets)))
    if getattr(backbone.config, "is_encoder_decoder", False):
        backbone = backbone.get_encoder()
    return backbone


def _build_mel_cnn(options: MelCNNOptions, preprocessor: Preprocessor, assets: Path | None) -> Encoder:
    return MelCNN(
        options.n_mels,
        options.channels,
        options.num_blocks,
        options.output_dim,
        options.pooling,
        options.dropout,
        options.channels_last,
    )


def _build_mel_lstm(options: MelLSTMOptions, preprocessor: Preprocessor, assets: Path | None) -> Encoder:
    return MelLSTM(
        options.n_mels, options.hidden_dim, options.num_layers, options.stack_frames, options.dropout
    )


def _make_waveform(options: HFAudioOptions, spec: InputSpec) -> Preprocessor:
    return WaveformPreprocessor(options.model, options.max_seconds)


def _build_hf_audio(options: HFAudioOptions, preprocessor: Preprocessor, assets: Path | None) -> Encoder:
    backbone: Any = load_hf_audio_backbone(options.model, assets)
    if options.gradient_checkpointing:
        enable_gradient_checkpointing(backbone, "hf_audio")
    if options.freeze_feature_encoder and hasattr(backbone, "feature_extractor"):
        freeze(backbone.feature_extractor)
    # SpecAugment's replacement vector is only used on masked spans; kept fixed so that every trainable
    # parameter gets a gradient on every step.
    spec_embed: Any = getattr(backbone, "masked_spec_embed", None)
    if isinstance(spec_embed, nn.Parameter):
        spec_embed.requires_grad_(False)
    return HFAudio(backbone, options.pooling)


# What `augment: auto` gives the log-mel encoders trained from scratch (see omnifuse.augment.audio).
MEL_AUGMENT: dict[str, dict[str, Any]] = {"spec_augment": {}, "tempo": {}, "shift": {}}

ENCODERS.add(
    "mel_cnn",
    EncoderSpec(
        modality="audio",
        options=MelCNNOptions,
        make_preprocessor=make_logmel,
        build=_build_mel_cnn,
        summary="small 2-D CNN over log-mel frames, masked pooling over time (trained from scratch)",
        augment=MEL_AUGMENT,
    ),
)
ENCODERS.add(
    "mel_lstm",
    EncoderSpec(
        modality="audio",
        options=MelLSTMOptions,
        make_preprocessor=make_logmel,
        build=_build_mel_lstm,
        summary="bidirectional LSTM over log-mel frames, masked mean pooling (trained from scratch)",
        augment=MEL_AUGMENT,
    ),
)
ENCODERS.add(
    "hf_audio",
    EncoderSpec(
        modality="audio",
        options=HFAudioOptions,
        make_preprocessor=_make_waveform,
        build=_build_hf_audio,
        summary="Hugging Face wav2vec2 / HuBERT / Whisper encoder by hub name or local folder",
    ),
)

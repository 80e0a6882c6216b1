"""Audio augmentation on log-mel batches {"mel": (B, T, M), "mask": (B, T)}: SpecAugment, tempo, warp, noise.

The frames were made once, before training, so these act in the log-mel domain: time and frequency masks
(SpecAugment, Park et al. 2019, https://arxiv.org/abs/1904.08779), tempo perturbation by resampling the
frame axis (speed without a pitch change), a frequency warp of the mel axis (vocal tract length
perturbation, Jaitly & Hinton 2013: a voice whose formants sit higher or lower, e.g. a woman's or a child's
voice when training heard men), a time shift, additive noise on the (normalised) features, and a gain that
shifts the log energies (a no-op under the default per-utterance normalisation, so off by default).
Padded frames stay padding: every transform keeps ``mask`` consistent with the frames it writes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from omnifuse.augment.base import AUGMENTS, AugmentSpec, Inputs, Transform, chance, uniform
from omnifuse.config.parsing import bounded, positive


@dataclass
class SpecAugmentOptions:
    """Options of ``spec_augment``."""

    time_masks: int = 2  # time stripes per row
    time_width: float = 0.1  # widest time stripe, as a share of the row's real frames
    freq_masks: int = 2  # frequency stripes per row
    freq_width: float = 0.15  # widest frequency stripe, as a share of the mel bins


@dataclass
class TempoOptions:
    """Options of ``tempo``."""

    low: float = 0.85  # slowest rate (0.85: the clip lasts 1 / 0.85 = 1.18x as long)
    high: float = 1.15  # fastest rate


@dataclass
class FreqWarpOptions:
    """Options of ``freq_warp``."""

    low: float = 0.8  # smallest frequency scale (0.8: every formant at 0.8x its frequency)
    high: float = 1.25  # largest frequency scale (a typical woman's formants sit ~1.15-1.2x a man's)
    nyquist_hz: float = 8000.0  # top of the mel axis: half the column's sample_rate (16000 Hz by default)
    p: float = 0.5  # share of rows warped (the others stay as heard: warping all of them cost accuracy)


@dataclass
class EqOptions:
    """Options of ``eq``."""

    p: float = bounded(0.5, low=0, high=1)  # share of the rows equalised
    bands: int = positive(3)  # smooth curve: a sum of this many cosines across the mel axis
    max_offset: float = bounded(0.5, low=0)  # largest amplitude of each cosine, in normalised units


@dataclass
class ReverbOptions:
    """Options of ``reverb``."""

    p: float = bounded(0.5, low=0, high=1)  # share of the rows with a room added
    max_frames: int = positive(12)  # length of the tail, in frames
    min_decay: float = bounded(0.3, low=0.01)  # the slowest decay per frame (log energy): a long tail
    max_decay: float = bounded(1.5, low=0.01)  # the fastest decay per frame: a short tail, a small room


@dataclass
class BandLimitOptions:
    """Options of ``band_limit``."""

    p: float = bounded(0.5, low=0, high=1)  # share of the rows band-limited
    low_hz: tuple[float, float] = (150.0, 500.0)  # the pass band's lower edge is drawn from this range
    high_hz: tuple[float, float] = (2500.0, 4000.0)  # and its upper edge from this one
    attenuation: float = bounded(2.0, low=0)  # how far (normalised units) the bins outside the band fall
    nyquist_hz: float = bounded(8000.0, low=1)  # half the column's sample_rate (the top mel bin's frequency)


@dataclass
class CodecOptions:
    """Options of ``codec``."""

    p: float = bounded(0.5, low=0, high=1)  # share of the rows degraded
    min_step: float = bounded(0.25, low=0.01)  # the finest quantisation step of the log-mel values
    max_step: float = bounded(1.0, low=0.01)  # the coarsest


@dataclass
class ShiftOptions:
    """Options of ``shift``."""

    max_fraction: float = 0.1  # largest shift, as a share of the row's real frames, either way


@dataclass
class NoiseOptions:
    """Options of ``noise``."""

    max_std: float = 0.3  # Gaussian noise with a std drawn from [0, max_std] per row, on real frames
    p: float = 0.5  # share of rows with noise


@dataclass
class GainOptions:
    """Options of ``gain``."""

    max_db: float = 6.0  # gain drawn from [-max_db, max_db] dB, added to the log-mel power


def lengths_of(mask: Tensor) -> Tensor:
    """(B, T) bool -> (B,) number of real frames (real frames come first in each row)."""
    return mask.sum(dim=1)


def stripes(generator: torch.Generator, count: int, width: Tensor, size: Tensor, span: int) -> Tensor:
    """(B, span) bool: ``count`` random stripes per row, each up to ``width`` (B,) long in ``size`` (B,)."""
    b, device = width.shape[0], width.device
    positions = torch.arange(span, device=device)[None, :]  # (1, span)
    hit = torch.zeros(b, span, dtype=torch.bool, device=device)
    for _ in range(count):
        length = (uniform(generator, b, 0.0, 1.0, device) * (width + 1)).floor()  # (B,) in [0, width]
        start = uniform(generator, b, 0.0, 1.0, device) * (size - length).clamp(min=0)  # (B,)
        start = start.floor()
        hit |= (positions >= start[:, None]) & (positions < (start + length)[:, None])
    return hit


def _spec_augment(options: SpecAugmentOptions) -> Transform:
    def apply(inputs: Inputs, generator: torch.Generator) -> Inputs:
        mel, mask = inputs["mel"], inputs["mask"].bool()  # (B, T, M), (B, T)
        b, t, m = mel.shape
        real = lengths_of(mask).to(mel.dtype)  # (B,)
        time = stripes(generator, options.time_masks, (real * options.time_width).floor(), real, t)
        bins = torch.full((b,), float(m), device=mel.device)
        freq = stripes(generator, options.freq_masks, (bins * options.freq_width).floor(), bins, m)
        hidden = time[:, :, None] | freq[:, None, :]  # (B, T, M)
        return {**inputs, "mel": mel.masked_fill(hidden, 0.0)}

    return apply


def resample_frames(mel: Tensor, mask: Tensor, rate: Tensor) -> tuple[Tensor, Tensor]:
    """Plays each row at ``rate`` (B,) by linear interpolation along time: (B, T, M) -> (B, T', M).

    A row of L real frames becomes round(L / rate) frames; T' is the longest of them.
    """
    lengths = lengths_of(mask).to(mel.dtype)  # (B,)
    new_lengths = torch.where(lengths > 0, (lengths / rate).round().clamp(min=1), lengths)  # (B,)
    span = int(max(float(new_lengths.max()), 1.0))
    steps = torch.arange(span, device=mel.device, dtype=mel.dtype)[None, :]  # (1, T')
    source = (steps * rate[:, None]).clamp(max=(lengths - 1).clamp(min=0)[:, None])  # (B, T')
    low = source.floor().long()  # (B, T')
    high = (low + 1).clamp(max=(lengths - 1).clamp(min=0).long()[:, None])  # (B, T')
    frac = (source - low.to(mel.dtype)).unsqueeze(-1)  # (B, T', 1)
    gather = lambda idx: mel.gather(1, idx.unsqueeze(-1).expand(-1, -1, mel.shape[2]))  # noqa: E731
    out = gather(low) * (1 - frac) + gather(high) * frac  # (B, T', M)
    new_mask = steps < new_lengths[:, None]  # (B, T')
    return out * new_mask.unsqueeze(-1), new_mask


def _tempo(options: TempoOptions) -> Transform:
    def apply(inputs: Inputs, generator: torch.Generator) -> Inputs:
        mel, mask = inputs["mel"], inputs["mask"].bool()
        rate = uniform(generator, mel.shape[0], options.low, options.high, mel.device)  # (B,)
        out, new_mask = resample_frames(mel, mask, rate)
        return {**inputs, "mel": out, "mask": new_mask}

    return apply


def warp_bins(mel: Tensor, scale: Tensor, nyquist_hz: float) -> Tensor:
    """Moves every frequency f of each row to ``scale`` * f.

    (B, T, M) log-mel frames, (B,) scales -> (B, T, M).

    Bin m of M is taken as the mel value m / (M - 1) of the way from 0 Hz to ``nyquist_hz`` (HTK scale); the
    warped bin m reads the source spectrum at f / scale, linearly interpolated between bins; above the top
    bin (scale < 1) the top bin is repeated.
    """
    b, t, m = mel.shape
    top = 2595.0 * math.log10(1.0 + nyquist_hz / 700.0)  # the mel value of the top bin
    position = torch.arange(m, device=mel.device, dtype=mel.dtype)[None, :] / max(m - 1, 1)  # (1, M)
    hz = 700.0 * (torch.pow(10.0, position * top / 2595.0) - 1.0)  # (1, M): each bin's frequency
    source_hz = hz / scale[:, None]  # (B, M)
    source = 2595.0 * torch.log10(1.0 + source_hz / 700.0) / top * (m - 1)  # (B, M): fractional bins
    source = source.clamp(0.0, m - 1.0)
    low = source.floor().long()  # (B, M)
    high = (low + 1).clamp(max=m - 1)  # (B, M)
    frac = (source - low.to(mel.dtype))[:, None, :]  # (B, 1, M)
    gather = lambda idx: mel.gather(2, idx[:, None, :].expand(-1, t, -1))  # noqa: E731
    return gather(low) * (1.0 - frac) + gather(high) * frac  # (B, T, M)


def _freq_warp(options: FreqWarpOptions) -> Transform:
    def apply(inputs: Inputs, generator: torch.Generator) -> Inputs:
        mel = inputs["mel"]  # (B, T, M); padded frames are zero and stay zero (a mix of zeros)
        scale = uniform(generator, mel.shape[0], options.low, options.high, mel.device)  # (B,)
        warped = chance(generator, mel.shape[0], options.p, mel.device)  # (B,) bool
        scale = torch.where(warped, scale, torch.ones_like(scale))
        return {**inputs, "mel": warp_bins(mel, scale, options.nyquist_hz)}

    return apply


def _eq(options: EqOptions) -> Transform:
    def apply(inputs: Inputs, generator: torch.Generator) -> Inputs:
        mel, mask = inputs["mel"], inputs["mask"].bool()  # (B, T, M), (B, T)
        b, _, m = mel.shape
        position = torch.arange(m, device=mel.device, dtype=mel.dtype) / max(m - 1, 1)  # (M,)
        curve = torch.zeros(b, m, device=mel.device, dtype=mel.dtype)  # (B, M)
        for k in range(1, options.bands + 1):
            amplitude = uniform(generator, b, -options.max_offset, options.max_offset, mel.device)  # (B,)
            curve = curve + amplitude[:, None] * torch.cos(math.pi * k * position)[None, :]
        curve = curve * chance(generator, b, options.p, mel.device)[:, None]
        return {**inputs, "mel": mel + curve[:, None, :] * mask.unsqueeze(-1)}

    return apply


def _reverb(options: ReverbOptions) -> Transform:
    def apply(inputs: Inputs, generator: torch.Generator) -> Inputs:
        mel, mask = inputs["mel"], inputs["mask"].bool()  # (B, T, M), (B, T)
        b, t, _ = mel.shape
        decay = uniform(generator, b, options.min_decay, options.max_decay, mel.device)  # (B,) per frame
        copies = [mel]
        for k in range(1, min(options.max_frames, t - 1) + 1):  # frame t hears frame t - k, k * decay weaker
            late = torch.nn.functional.pad(mel[:, :-k], (0, 0, k, 0), value=-1e4)  # (B, T, M)
            copies.append(late - k * decay[:, None, None])
        wet = torch.logsumexp(torch.stack(copies), dim=0)  # (B, T, M): energies add in the power domain
        real = mask.unsqueeze(-1).to(mel.dtype)  # (B, T, 1)
        count = (real.sum(dim=(1, 2), keepdim=True) * mel.shape[2]).clamp(min=1)  # (B, 1, 1)
        # the same mean over the real frames as before: the features stay normalised
        wet = wet + ((mel - wet) * real).sum(dim=(1, 2), keepdim=True) / count
        rows = chance(generator, b, options.p, mel.device)[:, None, None]  # (B, 1, 1)
        return {**inputs, "mel": torch.where(rows & mask.unsqueeze(-1), wet, mel)}

    return apply


def mel_bin_hz(bins: int, nyquist_hz: float, device: torch.device, dtype: torch.dtype) -> Tensor:
    """(M,) the frequency of each of ``bins`` mel bins spread evenly in mel from 0 Hz to ``nyquist_hz``."""
    top = 2595.0 * math.log10(1.0 + nyquist_hz / 700.0)
    position = torch.arange(bins, device=device, dtype=dtype) / max(bins - 1, 1)  # (M,)
    return 700.0 * (torch.pow(10.0, position * top / 2595.0) - 1.0)


def _band_limit(options: BandLimitOptions) -> Transform:
    def apply(inputs: Inputs, generator: torch.Generator) -> Inputs:
        mel, mask = inputs["mel"], inputs["mask"].bool()  # (B, T, M), (B, T)
        b, _, m = mel.shape
        hz = mel_bin_hz(m, options.nyquist_hz, mel.device, mel.dtype)[None, :]  # (1, M)
        low = uniform(generator, b, *options.low_hz, mel.device)[:, None]  # (B, 1)
        high = uniform(generator, b, *options.high_hz, mel.device)[:, None]  # (B, 1)
        outside = (hz < low) | (hz > high)  # (B, M)
        rows = chance(generator, b, options.p, mel.device)[:, None]  # (B, 1)
        drop = (outside & rows).to(mel.dtype) * options.attenuation  # (B, M)
        return {**inputs, "mel": mel - drop[:, None, :] * mask.unsqueeze(-1)}

    return apply


def _codec(options: CodecOptions) -> Transform:
    def apply(inputs: Inputs, generator: torch.Generator) -> Inputs:
        mel, mask = inputs["mel"], inputs["mask"].bool()  # (B, T, M), (B, T)
        b = mel.shape[0]
        step = uniform(generator, b, options.min_step, options.max_step, mel.device)[:, None, None]  # (B,1,1)
        coarse = torch.round(mel / step) * step  # each value on a grid: a low-bitrate spectrum
        rows = chance(generator, b, options.p, mel.device)[:, None, None] & mask.unsqueeze(-1)
        return {**inputs, "mel": torch.where(rows, coarse, mel)}

    return apply


def _shift(options: ShiftOptions) -> Transform:
    def apply(inputs: Inputs, generator: torch.Generator) -> Inputs:
        mel, mask = inputs["mel"], inputs["mask"].bool()  # (B, T, M), (B, T)
        b, t, m = mel.shape
        lengths = lengths_of(mask)  # (B,)
        limit = lengths.to(mel.dtype) * options.max_fraction  # (B,)
        shift = (uniform(generator, b, -1.0, 1.0, mel.device) * limit).round().long()  # (B,)
        steps = torch.arange(t, device=mel.device)[None, :]  # (1, T)
        # frame t reads frame t - shift; the edge frame is repeated where that falls outside the clip
        source = (steps - shift[:, None]).clamp(min=0).minimum((lengths - 1).clamp(min=0)[:, None])
        out = mel.gather(1, source.unsqueeze(-1).expand(-1, -1, m))  # (B, T, M)
        return {**inputs, "mel": out * mask.unsqueeze(-1)}

    return apply


def _noise(options: NoiseOptions) -> Transform:
    def apply(inputs: Inputs, generator: torch.Generator) -> Inputs:
        mel, mask = inputs["mel"], inputs["mask"].bool()
        b = mel.shape[0]
        std = uniform(generator, b, 0.0, options.max_std, mel.device)  # (B,)
        std = std * chance(generator, b, options.p, mel.device)
        noise = torch.randn(mel.shape, generator=generator).to(mel.device, mel.dtype)  # (B, T, M)
        noisy = mel + noise * std[:, None, None] * mask.unsqueeze(-1)
        return {**inputs, "mel": noisy}

    return apply


def _gain(options: GainOptions) -> Transform:
    def apply(inputs: Inputs, generator: torch.Generator) -> Inputs:
        mel, mask = inputs["mel"], inputs["mask"].bool()
        db = uniform(generator, mel.shape[0], -options.max_db, options.max_db, mel.device)  # (B,)
        offset = db * (math.log(10.0) / 10.0)  # a power gain in dB, on the natural-log scale
        return {**inputs, "mel": mel + offset[:, None, None] * mask.unsqueeze(-1)}

    return apply


MEL = ("mel", "mask")
AUGMENTS.add("spec_augment", AugmentSpec(MEL, SpecAugmentOptions, _spec_augment,
                                         "SpecAugment: random time and frequency stripes of frames zeroed"))
AUGMENTS.add("tempo", AugmentSpec(MEL, TempoOptions, _tempo,
                                  "tempo perturbation: frames resampled to play 0.85x to 1.15x as fast"))
AUGMENTS.add("freq_warp", AugmentSpec(
    MEL, FreqWarpOptions, _freq_warp,
    "frequency warp (VTLP): half the rows' formants moved by 0.8x to 1.25x, for unseen voices"))
AUGMENTS.add("eq", AugmentSpec(MEL, EqOptions, _eq,
                               "random smooth equaliser curve on half the rows (another microphone, "
                               "channel or speech engine)"))
AUGMENTS.add("reverb", AugmentSpec(MEL, ReverbOptions, _reverb,
                                   "a decaying echo of earlier frames on half the rows (a room)"))
AUGMENTS.add("band_limit", AugmentSpec(
    MEL, BandLimitOptions, _band_limit,
    "telephone band: the bins below ~150-500 Hz and above ~2.5-4 kHz attenuated on half the rows"))
AUGMENTS.add("codec", AugmentSpec(MEL, CodecOptions, _codec,
                                  "codec-like degradation: the log-mel values of half the rows quantised"))
AUGMENTS.add("shift", AugmentSpec(MEL, ShiftOptions, _shift,
                                  "time shift of the frames by up to 10% of the clip, edges repeated"))
AUGMENTS.add("noise", AugmentSpec(MEL, NoiseOptions, _noise,
                                  "Gaussian noise added to the log-mel features of half the rows"))
AUGMENTS.add("gain", AugmentSpec(MEL, GainOptions, _gain,
                                 "random gain of the log-mel power (no effect with normalize: true)"))

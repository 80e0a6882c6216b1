"""Log-mel transforms: masks respected, lengths, the identity settings, seeding."""

from __future__ import annotations

import pytest
import torch

from omnifuse.augment.audio import (
    BandLimitOptions,
    CodecOptions,
    EqOptions,
    FreqWarpOptions,
    GainOptions,
    NoiseOptions,
    ReverbOptions,
    ShiftOptions,
    SpecAugmentOptions,
    TempoOptions,
    _band_limit,
    _codec,
    _eq,
    _freq_warp,
    _gain,
    _noise,
    _reverb,
    _shift,
    _spec_augment,
    _tempo,
    mel_bin_hz,
    resample_frames,
    warp_bins,
)


def _batch() -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    mel = torch.randn(3, 40, 16, generator=gen) + 5.0  # no exact zeros in real frames
    mask = torch.ones(3, 40, dtype=torch.bool)
    mask[1, 25:] = False
    mask[2] = False  # a missing clip
    return {"mel": mel * mask.unsqueeze(-1), "mask": mask}


TRANSFORMS = {
    "spec_augment": lambda: _spec_augment(SpecAugmentOptions()),
    "tempo": lambda: _tempo(TempoOptions()),
    "shift": lambda: _shift(ShiftOptions(max_fraction=0.2)),
    "noise": lambda: _noise(NoiseOptions(p=1.0)),
    "gain": lambda: _gain(GainOptions()),
    "freq_warp": lambda: _freq_warp(FreqWarpOptions(p=1.0)),
    "eq": lambda: _eq(EqOptions(p=1.0)),
    "reverb": lambda: _reverb(ReverbOptions(p=1.0)),
    "band_limit": lambda: _band_limit(BandLimitOptions(p=1.0)),
    "codec": lambda: _codec(CodecOptions(p=1.0)),
}


def test_band_limit_attenuates_only_the_bins_outside_the_band() -> None:
    batch = _batch()
    options = BandLimitOptions(p=1.0, low_hz=(300.0, 300.0), high_hz=(3000.0, 3000.0), attenuation=2.0)
    out = _band_limit(options)(batch, torch.Generator().manual_seed(0))["mel"]
    hz = mel_bin_hz(16, 8000.0, torch.device("cpu"), torch.float32)
    outside = (hz < 300.0) | (hz > 3000.0)
    drop = (batch["mel"][0] - out[0])  # (T, M)
    assert torch.allclose(drop[:, outside], torch.full_like(drop[:, outside], 2.0))
    assert torch.equal(drop[:, ~outside], torch.zeros_like(drop[:, ~outside])) and outside.any()


def test_codec_puts_every_value_of_a_row_on_one_grid() -> None:
    batch = _batch()
    out = _codec(CodecOptions(p=1.0, min_step=0.5, max_step=0.5))(batch, torch.Generator())["mel"]
    real = out[0]
    torch.testing.assert_close(real / 0.5, torch.round(real / 0.5))
    assert float((real - batch["mel"][0]).abs().max()) <= 0.25 + 1e-5


def test_eq_adds_one_curve_to_every_frame_of_a_row() -> None:
    batch = _batch()
    out = _eq(EqOptions(p=1.0))(batch, torch.Generator().manual_seed(2))["mel"]
    offset = out[0] - batch["mel"][0]  # (T, M)
    torch.testing.assert_close(offset, offset[:1].expand_as(offset))  # the same curve in every frame
    assert float(offset.abs().max()) > 0.01 and float(offset.abs().max()) <= 3 * 0.5 + 1e-5


def test_reverb_lets_a_loud_frame_ring_into_the_next_ones_and_keeps_the_mean() -> None:
    mel = torch.zeros(1, 30, 8)
    mel[0, 10] = 6.0  # one loud frame in silence
    batch = {"mel": mel, "mask": torch.ones(1, 30, dtype=torch.bool)}
    out = _reverb(ReverbOptions(p=1.0, min_decay=0.5, max_decay=0.5))(batch, torch.Generator())["mel"][0]
    assert float(out[11].mean() - out[5].mean()) > 1.0  # the echo after the loud frame, none before it
    assert float(out[12].mean()) < float(out[11].mean())  # and it decays
    assert abs(float(out.mean() - mel.mean())) < 1e-4


@pytest.mark.parametrize("name", sorted(TRANSFORMS))
def test_padding_stays_padding_and_missing_rows_stay_empty(name: str) -> None:
    out = TRANSFORMS[name]()(_batch(), torch.Generator().manual_seed(1))
    mel, mask = out["mel"], out["mask"]
    assert mel.shape[0] == 3 and mel.shape[2] == 16 and mask.shape == mel.shape[:2]
    assert float(mel[~mask].abs().max()) == 0.0
    assert not mask[2].any()
    assert torch.isfinite(mel).all()


@pytest.mark.parametrize("name", sorted(TRANSFORMS))
def test_seeded(name: str) -> None:
    transform = TRANSFORMS[name]()
    a = transform(_batch(), torch.Generator().manual_seed(5))["mel"]
    b = transform(_batch(), torch.Generator().manual_seed(5))["mel"]
    c = transform(_batch(), torch.Generator().manual_seed(6))["mel"]
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_spec_augment_zeroes_stripes_within_the_widths() -> None:
    batch = _batch()
    options = SpecAugmentOptions(time_masks=1, time_width=0.25, freq_masks=1, freq_width=0.25)
    out = _spec_augment(options)(batch, torch.Generator().manual_seed(2))["mel"]
    zeroed_frames = (out[0] == 0).all(dim=1).sum()  # whole frames hidden by the time stripe
    zeroed_bins = (out[0] == 0).all(dim=0).sum()  # whole bins hidden by the frequency stripe
    assert zeroed_frames <= 10 and zeroed_bins <= 4
    assert (out[0] == 0).any()


def test_resample_frames_changes_lengths_by_the_rate() -> None:
    batch = _batch()
    out, mask = resample_frames(batch["mel"], batch["mask"], torch.tensor([2.0, 0.5, 1.0]))
    assert mask.sum(dim=1).tolist() == [20, 50, 0]
    assert out.shape[1] == 50
    # rate 2: frame t reads frame 2t exactly
    assert torch.allclose(out[0, :20], batch["mel"][0, 0:40:2])


def test_resample_frames_at_rate_one_is_the_identity() -> None:
    batch = _batch()
    out, mask = resample_frames(batch["mel"], batch["mask"], torch.ones(3))
    assert torch.equal(mask, batch["mask"])
    assert torch.allclose(out, batch["mel"])


def test_shift_repeats_the_edge_frame() -> None:
    mel = torch.arange(10, dtype=torch.float32)[None, :, None].repeat(8, 1, 2) + 1  # 8 rows of frames 1..10
    mask = torch.ones(8, 10, dtype=torch.bool)
    out = _shift(ShiftOptions(max_fraction=0.5))({"mel": mel, "mask": mask}, torch.Generator().manual_seed(0))
    rows = out["mel"][:, :, 0]
    assert (rows != mel[:, :, 0]).any(dim=1).sum() >= 4  # most rows moved
    for values in rows.tolist():
        assert values == sorted(values)  # still in order: a shift, not a shuffle
        assert set(values) <= set(range(1, 11))
        steps = [b - a for a, b in zip(values, values[1:], strict=False)]
        assert set(steps) <= {0.0, 1.0}  # edge frames repeated, the rest consecutive


def test_gain_adds_the_same_offset_to_every_real_value_of_a_row() -> None:
    batch = _batch()
    out = _gain(GainOptions(max_db=6.0))(batch, torch.Generator().manual_seed(0))["mel"]
    diff = (out - batch["mel"])[0]
    assert torch.allclose(diff, diff[0, 0].expand_as(diff), atol=1e-5)
    assert 0 < abs(float(diff[0, 0])) <= 6.0 * 0.2303 + 1e-6


def test_warp_at_scale_one_is_the_identity() -> None:
    batch = _batch()
    assert torch.allclose(warp_bins(batch["mel"], torch.ones(3), 8000.0), batch["mel"], atol=1e-5)


def _bin_hz(bins: int, nyquist_hz: float) -> torch.Tensor:
    top = 2595.0 * torch.log10(torch.tensor(1.0 + nyquist_hz / 700.0))
    return 700.0 * (10.0 ** (torch.arange(bins) / (bins - 1) * top / 2595.0) - 1.0)


@pytest.mark.parametrize("scale", [0.8, 1.25])
def test_warp_moves_a_formant_to_scale_times_its_frequency(scale: float) -> None:
    bins = 64
    hz = _bin_hz(bins, 8000.0)
    peak = 30  # a formant at bin 30 (~1.9 kHz)
    mel = torch.zeros(1, 5, bins)
    mel[:, :, peak] = 1.0
    out = warp_bins(mel, torch.tensor([scale]), 8000.0)
    moved = int(out[0, 0].argmax())
    assert abs(float(hz[moved]) - scale * float(hz[peak])) < 0.06 * scale * float(hz[peak])
    assert torch.equal(out[0, 0], out[0, 4])  # every frame warped alike


def test_warp_down_repeats_the_top_bin() -> None:
    mel = torch.arange(16, dtype=torch.float32)[None, None, :].repeat(1, 2, 1)  # bins 0..15
    out = warp_bins(mel, torch.tensor([0.5]), 8000.0)[0, 0]
    assert float(out[-1]) == 15.0  # f / 0.5 is above the top bin: the top bin
    assert bool((out[1:] >= out[:-1]).all())  # still in order

"""Audio baseline features: MFCCs of omnifuse's log-mel front end, deltas, frames sampled over time."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from omnifuse.baselines.features.audio import N_MFCC, TIME_POINTS, AudioFeatures, deltas, mfcc, sample_frames


def _tone(tmp_path: Path, name: str, hz: float, seconds: float = 0.5, rate: int = 8000) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    sf.write(tmp_path / name, (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32), rate)
    return tmp_path / name


def test_mfcc_is_the_orthonormal_dct_of_the_log_mel_frames() -> None:
    flat = np.ones((5, 40))  # the same value in every mel bin: all the energy in coefficient 0
    coefficients = mfcc(flat)
    assert coefficients.shape == (5, N_MFCC)
    np.testing.assert_allclose(coefficients[:, 0], np.sqrt(40.0))
    np.testing.assert_allclose(coefficients[:, 1:], 0.0, atol=1e-12)


def test_deltas_of_a_ramp_are_its_slope_and_sampling_keeps_the_ends() -> None:
    ramp = np.arange(12, dtype=np.float64)[:, None] * np.array([[1.0, -2.0]])  # (12, 2)
    change = deltas(ramp)
    np.testing.assert_allclose(change[2:-2], [[1.0, -2.0]] * 8)  # inside the edges: the exact slope
    sampled = sample_frames(ramp, 4)
    np.testing.assert_allclose(sampled[:, 0], [0.0, 11 / 3, 22 / 3, 11.0])
    assert sample_frames(ramp[:1], 3).shape == (3, 2)  # one frame is repeated


def test_clip_features_have_a_fixed_length_are_deterministic_and_tell_tones_apart(tmp_path: Path) -> None:
    featurize = AudioFeatures(sample_rate=8000, max_seconds=1.0)
    low, high = _tone(tmp_path, "low.wav", 300), _tone(tmp_path, "high.wav", 2000, seconds=0.3)
    a, b = featurize(low), featurize(high)
    assert a.shape == b.shape == (featurize.dim,) == ((TIME_POINTS + 4) * N_MFCC,)
    np.testing.assert_array_equal(a, featurize(low))
    assert np.abs(a - b).max() > 1.0

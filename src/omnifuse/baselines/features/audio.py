"""Audio features: MFCCs (the DCT of a log-mel spectrogram) and their deltas, summarised over time.

The file is decoded and resampled by omnifuse's own ``load_audio`` and the log-mel frames come from
``LogMelPreprocessor.features`` (without its per-utterance normalisation), so the formats, resampling and
cropping are those the model sees. Per clip: the MFCC frames sampled at ``TIME_POINTS`` evenly spaced
instants (linear interpolation, so every clip gives the same number of values whatever its length), and
the mean and standard deviation of each MFCC and each delta over all frames.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.fft import dct

from omnifuse.data.preprocess.audio import LogMelPreprocessor, load_audio

N_MFCC = 20
N_MELS = 40
TIME_POINTS = 20
WIN_MS, HOP_MS = 64.0, 16.0  # longer than speech front-ends' 25 / 10 ms: steadier spectra in noisy clips
DELTA_WIDTH = 2  # frames on each side in the delta regression


def mfcc(logmel: np.ndarray, n_mfcc: int = N_MFCC) -> np.ndarray:
    """(T, M) log-mel frames -> (T, n_mfcc) MFCCs: the first coefficients of the DCT-II over the mels."""
    return dct(logmel, type=2, norm="ortho", axis=1)[:, :n_mfcc]


def deltas(frames: np.ndarray, width: int = DELTA_WIDTH) -> np.ndarray:
    """(T, D) -> (T, D) regression deltas ``sum_n n (x[t+n] - x[t-n]) / (2 sum_n n^2)``, edges repeated."""
    padded = np.pad(frames, ((width, width), (0, 0)), mode="edge")  # (T + 2w, D)
    steps = len(frames)
    total = sum(n * (padded[width + n : width + n + steps] - padded[width - n : width - n + steps])
                for n in range(1, width + 1))
    return total / (2.0 * sum(n * n for n in range(1, width + 1)))


def sample_frames(frames: np.ndarray, points: int = TIME_POINTS) -> np.ndarray:
    """(T, D) -> (points, D): the frames linearly interpolated at ``points`` evenly spaced instants."""
    if len(frames) == 1:
        return np.repeat(frames, points, axis=0)
    where = np.linspace(0.0, len(frames) - 1.0, points)  # (points,)
    low = np.floor(where).astype(np.int64)
    high = np.minimum(low + 1, len(frames) - 1)
    weight = (where - low)[:, None]  # (points, 1)
    return frames[low] * (1.0 - weight) + frames[high] * weight


class AudioFeatures:
    """Audio file -> ``(TIME_POINTS * N_MFCC + 4 * N_MFCC,)`` float32 MFCC features.

    Args:
        sample_rate: clips are resampled to this rate (Hz).
        max_seconds: clips are cropped to their first ``max_seconds``.
    """

    def __init__(self, sample_rate: int = 16000, max_seconds: float = 10.0) -> None:
        self.sample_rate = sample_rate
        self.max_seconds = max_seconds
        self.front_end = LogMelPreprocessor(sample_rate, n_mels=N_MELS, win_ms=WIN_MS, hop_ms=HOP_MS,
                                            max_seconds=max_seconds, normalize=False)

    @property
    def dim(self) -> int:
        """Length of one clip's feature vector."""
        return (TIME_POINTS + 4) * N_MFCC

    def __call__(self, value: Path | bytes) -> np.ndarray:
        """The features of one clip.

        Raises:
            BadValueError: missing, empty or undecodable file (see ``load_audio``).
        """
        wave = load_audio(value, self.sample_rate, self.max_seconds)  # (S,)
        coefficients = mfcc(self.front_end.features(wave).numpy().astype(np.float64))  # (T, N_MFCC)
        change = deltas(coefficients)  # (T, N_MFCC)
        parts = [sample_frames(coefficients).reshape(-1), coefficients.mean(0), coefficients.std(0),
                 change.mean(0), change.std(0)]
        return np.concatenate(parts).astype(np.float32)

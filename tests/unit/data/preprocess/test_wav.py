"""The PCM16 WAV fast path: the very samples soundfile reads, a crop that reads no more, and a fallback
(None) for every file it does not handle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

from omnifuse.data.preprocess import wav
from omnifuse.data.preprocess.audio import LogMelPreprocessor, load_audio
from omnifuse.data.preprocess.wav import read_pcm16_wav


def _noise(frames: int, channels: int) -> np.ndarray:
    return np.random.default_rng(0).uniform(-1, 1, (frames, channels)).astype(np.float32)


CASES = [(1, 16000, 10.0), (2, 8000, 0.5), (1, 22050, 0.01)]  # (channels, rate, max_seconds)


@pytest.mark.parametrize(("channels", "rate", "seconds"), CASES)
def test_samples_equal_soundfile_bit_for_bit(
    tmp_path: Path, channels: int, rate: int, seconds: float
) -> None:
    path = tmp_path / "a.wav"
    soundfile.write(str(path), _noise(rate, channels), rate, subtype="PCM_16")
    found = read_pcm16_wav(path, seconds)
    assert found is not None
    expected = soundfile.read(str(path), frames=int(np.ceil(seconds * rate)), dtype="float32",
                              always_2d=True)[0]
    assert found[1] == rate and found[0].dtype == np.float32
    np.testing.assert_array_equal(found[0], expected)


def test_a_long_file_is_cropped_without_reading_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "long.wav"
    soundfile.write(str(path), _noise(8000 * 60, 1), 8000, subtype="PCM_16")
    sizes: list[int] = []
    real_open = Path.open

    def spy(self: Path, *args: object, **kwargs: object) -> object:
        handle = real_open(self, *args, **kwargs)  # type: ignore[call-overload]
        real_read = handle.read

        def read(size: int = -1) -> bytes:
            sizes.append(size)
            return real_read(size)

        handle.read = read
        return handle

    monkeypatch.setattr(Path, "open", spy)
    found = read_pcm16_wav(path, 2.5)
    assert found is not None and found[0].shape == (20000, 1)
    assert sizes == [wav.HEAD_BYTES, 20000 * 2]  # the header, then exactly 2.5 s of samples


@pytest.mark.parametrize("subtype", ["PCM_24", "FLOAT", "PCM_U8"])
def test_other_encodings_fall_back_to_soundfile(tmp_path: Path, subtype: str) -> None:
    path = tmp_path / "a.wav"
    soundfile.write(str(path), _noise(800, 1), 8000, subtype=subtype)
    assert read_pcm16_wav(path, 1.0) is None
    assert load_audio(path, 8000, 1.0).shape == (800,)  # still decoded, by soundfile


def test_truncated_odd_and_missing_files_fall_back(tmp_path: Path) -> None:
    path = tmp_path / "a.wav"
    soundfile.write(str(path), _noise(8000, 1), 8000, subtype="PCM_16")
    data = path.read_bytes()
    (tmp_path / "cut.wav").write_bytes(data[: len(data) // 2])
    (tmp_path / "flac.wav").write_bytes(b"fLaC" + data[4:])
    assert read_pcm16_wav(tmp_path / "cut.wav", 1.0) is None  # soundfile decides what a cut file gives
    assert read_pcm16_wav(tmp_path / "flac.wav", 1.0) is None
    assert read_pcm16_wav(tmp_path / "nope.wav", 1.0) is None
    assert read_pcm16_wav(tmp_path, 1.0) is None  # a directory


def test_log_mel_of_a_pcm16_file_equals_the_soundfile_route(tmp_path: Path) -> None:
    path = tmp_path / "a.wav"
    soundfile.write(str(path), _noise(12000, 1) * 0.3, 16000, subtype="PCM_16")
    pre = LogMelPreprocessor(n_mels=40, max_seconds=1.5)
    fast = pre(path)["mel"]
    slow = pre(path.read_bytes())["mel"]  # bytes always go through soundfile
    assert fast.shape == (76, 40) and bool((fast == slow).all())

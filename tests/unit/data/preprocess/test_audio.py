"""Audio decoding (soundfile + soxr) and the log-mel / Hugging Face waveform preprocessors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from omnifuse.data.preprocess import audio
from omnifuse.data.preprocess.audio import (
    LogMelPreprocessor,
    WaveformPreprocessor,
    load_audio,
    mel_bin_of,
    mel_filterbank,
)
from omnifuse.errors import BadValueError, ModelDirError

SR = 16000


def tone(hz: float, seconds: float, rate: int, amplitude: float = 0.5) -> np.ndarray:
    """A sine wave, float32."""
    t = np.arange(round(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def write(
    path: Path, data: np.ndarray, rate: int, subtype: str | None = None, fmt: str | None = None
) -> Path:
    soundfile.write(str(path), data, rate, subtype=subtype, format=fmt)
    return path


def dominant_hz(wave: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(wave))
    return float(np.fft.rfftfreq(wave.size, 1 / rate)[np.argmax(spectrum)])


# -- decoding ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subtype", "tolerance"),
    [
        ("PCM_U8", 1 / 64),
        ("PCM_16", 1e-4),
        ("PCM_24", 1e-6),
        ("PCM_32", 1e-6),
        ("FLOAT", 0.0),
        ("DOUBLE", 0.0),
    ],
)
def test_wav_bit_depths_decode_to_the_same_wave(tmp_path: Path, subtype: str, tolerance: float) -> None:
    wave = tone(440, 0.5, SR)
    out = load_audio(write(tmp_path / "a.wav", wave, SR, subtype), SR, 10.0)
    assert out.dtype == np.float32 and out.shape == (8000,)
    np.testing.assert_allclose(out, wave, atol=tolerance + 1e-7)


@pytest.mark.parametrize(
    ("name", "subtype", "fmt"), [("a.flac", "PCM_24", "FLAC"), ("a.ogg", "VORBIS", "OGG")]
)
def test_flac_and_ogg(tmp_path: Path, name: str, subtype: str, fmt: str) -> None:
    wave = tone(440, 1.0, SR)
    out = load_audio(write(tmp_path / name, wave, SR, subtype, fmt), SR, 10.0)
    assert abs(out.size - SR) <= 0.01 * SR
    assert dominant_hz(out, SR) == pytest.approx(440, abs=2)
    if fmt == "FLAC":  # lossless
        np.testing.assert_allclose(out, wave, atol=1e-6)


@pytest.mark.skipif("MP3" not in soundfile.available_formats(), reason="this libsndfile has no MP3")
def test_mp3(tmp_path: Path) -> None:
    out = load_audio(write(tmp_path / "a.mp3", tone(440, 1.0, SR), SR, "MPEG_LAYER_III", "MP3"), SR, 10.0)
    assert abs(out.size - SR) <= 0.1 * SR
    assert dominant_hz(out, SR) == pytest.approx(440, abs=3)


def test_bytes_decode_like_the_file(tmp_path: Path) -> None:
    path = write(tmp_path / "a.flac", tone(300, 0.3, SR), SR)
    np.testing.assert_array_equal(load_audio(path.read_bytes(), SR, 10.0), load_audio(path, SR, 10.0))


@pytest.mark.parametrize("channels", [2, 6])
def test_channels_are_mixed_down_by_the_mean(tmp_path: Path, channels: int) -> None:
    data = np.stack([tone(200 * (c + 1), 0.2, SR, 0.1) for c in range(channels)], axis=1)  # (S, C)
    out = load_audio(write(tmp_path / "multi.wav", data, SR, "FLOAT"), SR, 10.0)
    np.testing.assert_allclose(out, data.mean(axis=1), atol=1e-7)


@pytest.mark.parametrize("rate", [8000, 96000])
def test_other_rates_are_resampled_and_the_tone_lands_in_its_mel_bin(tmp_path: Path, rate: int) -> None:
    path = write(tmp_path / "r.wav", tone(440, 1.5, rate), rate, "PCM_16")
    wave = load_audio(path, SR, 10.0)
    assert abs(wave.size - 1.5 * SR) <= 2
    assert dominant_hz(wave, SR) == pytest.approx(440, abs=1)
    pre = LogMelPreprocessor(n_mels=64, normalize=False)
    mel = pre(path)["mel"]  # (T, 64)
    assert mel.shape == (1 + wave.size // 160, 64)
    assert int(mel.mean(dim=0).argmax()) == mel_bin_of(440, SR, 64)


def test_long_clip_is_cropped_without_reading_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rate = 8000
    # PCM_24: decoded by soundfile (plain PCM16 WAVs take the numpy fast path, tested in test_wav.py)
    path = write(tmp_path / "long.wav", tone(440, 120.0, rate, 0.2), rate, "PCM_24")
    requested: list[int] = []
    real_read = soundfile.SoundFile.read

    def spy(self: soundfile.SoundFile, frames: int = -1, *args: object, **kwargs: object) -> np.ndarray:
        requested.append(frames)
        return real_read(self, frames, *args, **kwargs)

    monkeypatch.setattr(soundfile.SoundFile, "read", spy)
    out = load_audio(path, SR, 2.5)
    assert requested == [math.ceil(2.5 * rate)]  # one read of 2.5 s, not 120 s
    assert out.shape == (40000,)


def test_silent_and_very_short_clips(tmp_path: Path) -> None:
    pre = LogMelPreprocessor()
    silent = pre(write(tmp_path / "silent.wav", np.zeros(SR, np.float32), SR, "PCM_16"))
    assert silent["mel"].shape == (101, 64) and torch.isfinite(silent["mel"]).all()
    short = pre(write(tmp_path / "short.wav", tone(440, 0.01, SR), SR, "PCM_16"))
    assert short["mel"].shape == (2, 64) and short["mask"].tolist() == [True, True]
    empty = write(tmp_path / "empty.wav", np.zeros(0, np.float32), SR, "PCM_16")  # a header, no samples
    assert load_audio(empty, SR, 10.0).shape == (1,)
    assert pre(empty)["mel"].shape == (1, 64)


# -- errors -----------------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(BadValueError, match=r"audio file '.*nope\.wav' does not exist; check the path"):
        load_audio(tmp_path / "nope.wav", SR, 10.0)


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(BadValueError, match=r"is a directory, not an audio file; point the cell at a file"):
        load_audio(tmp_path, SR, 10.0)


def test_zero_byte_file(tmp_path: Path) -> None:
    (tmp_path / "zero.wav").write_bytes(b"")
    with pytest.raises(BadValueError, match=r"zero\.wav' is empty \(0 bytes\); re-export the file"):
        load_audio(tmp_path / "zero.wav", SR, 10.0)
    with pytest.raises(BadValueError, match=r"the audio value is empty \(0 bytes\)"):
        load_audio(b"", SR, 10.0)


def test_text_file_named_wav(tmp_path: Path) -> None:
    (tmp_path / "text.wav").write_text("id,label\n1,cat\n" * 20)
    with pytest.raises(BadValueError, match=r"text\.wav' \(not a WAV/FLAC/OGG/MP3 file: .*\); convert it"):
        load_audio(tmp_path / "text.wav", SR, 10.0)


def test_truncated_header(tmp_path: Path) -> None:
    good = write(tmp_path / "good.wav", tone(440, 0.2, SR), SR, "PCM_16").read_bytes()
    (tmp_path / "cut.wav").write_bytes(good[:20])
    with pytest.raises(BadValueError, match=r"cut\.wav' \(truncated or corrupt audio: .*\); re-export"):
        load_audio(tmp_path / "cut.wav", SR, 10.0)


def test_corrupt_flac_stream(tmp_path: Path) -> None:
    good = write(tmp_path / "good.flac", np.random.rand(SR).astype(np.float32) - 0.5, SR).read_bytes()
    with pytest.raises(BadValueError, match=r"<\d+ bytes of audio> \(truncated or corrupt audio"):
        load_audio(good[: len(good) // 2], SR, 10.0)


def test_nan_samples(tmp_path: Path) -> None:
    wave = tone(440, 0.1, SR)
    wave[10] = np.nan
    with pytest.raises(BadValueError, match=r"contains NaN or infinite samples; re-export"):
        load_audio(write(tmp_path / "nan.wav", wave, SR, "FLOAT"), SR, 10.0)


def test_wrong_value_type() -> None:
    with pytest.raises(BadValueError, match=r"expected an audio file path or bytes, got int 3"):
        load_audio(3, SR, 10.0)  # type: ignore[arg-type]


def test_mp3_without_mp3_support_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a.mp3").write_bytes(b"ID3\x04\x00" + b"\x00" * 200)
    monkeypatch.setattr(audio.soundfile, "available_formats", lambda: {"WAV": "WAV", "FLAC": "FLAC"})
    with pytest.raises(BadValueError, match=r"MP3 is not supported by this libsndfile .*convert the file"):
        load_audio(tmp_path / "a.mp3", SR, 10.0)


# -- log-mel ----------------------------------------------------------------------------------------


def test_filterbank_shape_and_triangles() -> None:
    fb = mel_filterbank(SR, 512, 40)
    assert fb.shape == (40, 257) and (fb >= 0).all() and fb.max() <= 1.0 + 1e-6
    assert (fb.max(axis=1) > 0.5).all()  # no empty filter at this resolution
    centres = fb.argmax(axis=1)
    assert (np.diff(centres) >= 0).all()  # ordered from low to high frequency


def test_logmel_defaults_and_normalisation(tmp_path: Path) -> None:
    pre = LogMelPreprocessor()
    assert (pre.win_length, pre.hop_length, pre.n_fft) == (400, 160, 512)
    out = pre(write(tmp_path / "a.wav", tone(1000, 1.0, SR), SR, "PCM_16"))
    assert out["mel"].dtype == torch.float32 and out["mask"].dtype == torch.bool
    assert out["mel"].mean().abs() < 1e-4 and out["mel"].std(unbiased=False) == pytest.approx(1.0, abs=1e-3)
    raw = LogMelPreprocessor(normalize=False)(tmp_path / "a.wav")["mel"]
    assert raw.min() >= math.log(1e-6) - 1e-4


def test_logmel_crop_to_max_seconds(tmp_path: Path) -> None:
    out = LogMelPreprocessor(max_seconds=0.5)(write(tmp_path / "a.wav", tone(440, 3.0, SR), SR, "PCM_16"))
    assert out["mel"].shape == (51, 64)


def test_logmel_state_round_trip_and_blank(tmp_path: Path) -> None:
    pre = LogMelPreprocessor(sample_rate=8000, n_mels=20, hop_ms=20.0, normalize=False)
    state = json.loads(json.dumps(pre.state_dict()))
    restored = LogMelPreprocessor()
    restored.load_state_dict(state)
    path = write(tmp_path / "a.wav", tone(440, 0.4, SR), SR, "PCM_16")
    torch.testing.assert_close(restored(path)["mel"], pre(path)["mel"])
    assert restored(path)["mel"].shape == (21, 20)
    blank = restored.blank()
    assert blank["mel"].shape == (1, 20) and not blank["mask"].any()
    with pytest.raises(ModelDirError, match=r"state is of kind 'hf_waveform', expected 'log_mel'"):
        restored.load_state_dict({"kind": "hf_waveform"})


def test_logmel_bad_options() -> None:
    with pytest.raises(ValueError, match=r"must be > 0, got 16000, 0, 10.0"):
        LogMelPreprocessor(n_mels=0)
    with pytest.raises(ValueError, match=r"give fewer than one sample"):
        LogMelPreprocessor(hop_ms=0.01)
    with pytest.raises(ValueError, match=r"n_fft=128 is shorter than the window \(400 samples\)"):
        LogMelPreprocessor(n_fft=128)


# -- Hugging Face feature extractors ----------------------------------------------------------------


@pytest.fixture(scope="module")
def wav2vec2_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import Wav2Vec2FeatureExtractor

    folder = tmp_path_factory.mktemp("w2v")
    Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=True).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def whisper_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import WhisperFeatureExtractor

    folder = tmp_path_factory.mktemp("whisper")
    WhisperFeatureExtractor().save_pretrained(folder)
    return folder


def test_waveform_normalised(tmp_path: Path, wav2vec2_folder: Path) -> None:
    pre = WaveformPreprocessor(str(wav2vec2_folder), max_seconds=0.5)
    out = pre(write(tmp_path / "a.wav", tone(440, 1.0, 8000, 0.1), 8000, "PCM_16"))
    assert out["input_values"].shape == (8000,) and out["mask"].all()
    assert out["input_values"].mean().abs() < 1e-3 and out["input_values"].std() == pytest.approx(1, abs=1e-3)
    blank = pre.blank()
    assert blank["input_values"].shape == (1,) and not blank["mask"].any()


def test_waveform_not_normalised(tmp_path: Path) -> None:
    from transformers import Wav2Vec2FeatureExtractor

    Wav2Vec2FeatureExtractor(do_normalize=False).save_pretrained(tmp_path)
    path = write(tmp_path / "a.wav", tone(440, 0.2, SR, 0.1), SR, "FLOAT")
    out = WaveformPreprocessor(str(tmp_path))(path)
    np.testing.assert_allclose(out["input_values"].numpy(), tone(440, 0.2, SR, 0.1), atol=1e-7)


def test_whisper_features_are_fixed_30s(tmp_path: Path, whisper_folder: Path) -> None:
    pre = WaveformPreprocessor(str(whisper_folder), max_seconds=60.0)
    short = pre(write(tmp_path / "short.wav", tone(440, 1.0, SR), SR, "PCM_16"))
    assert short["input_features"].shape == (80, 3000)
    assert int(short["mask"].sum()) == 100  # 1 s of real frames
    long = pre(write(tmp_path / "long.wav", tone(440, 31.0, 8000), 8000, "PCM_16"))
    assert long["input_features"].shape == (80, 3000) and long["mask"].all()
    blank = pre.blank()
    assert blank["input_features"].shape == (80, 3000) and not blank["mask"].any()


def test_waveform_assets_and_state_round_trip(tmp_path: Path, whisper_folder: Path) -> None:
    pre = WaveformPreprocessor(str(whisper_folder), max_seconds=5.0)
    pre.fit([])
    assets = tmp_path / "assets"
    assets.mkdir()
    pre.save_assets(assets)
    assert (assets / "preprocessor_config.json").exists()
    restored = WaveformPreprocessor("no/such-model-on-this-machine")
    restored.load_state_dict(json.loads(json.dumps(pre.state_dict())))
    restored.load_assets(assets)
    path = write(tmp_path / "a.wav", tone(440, 0.5, SR), SR, "PCM_16")
    torch.testing.assert_close(restored(path)["input_features"], pre(path)["input_features"])
    assert restored.max_seconds == 5.0
    with pytest.raises(ModelDirError, match=r"state is of kind 'log_mel', expected 'hf_waveform'"):
        restored.load_state_dict({"kind": "log_mel"})
    with pytest.raises(ValueError, match=r"max_seconds must be > 0, got 0"):
        WaveformPreprocessor("x", max_seconds=0)

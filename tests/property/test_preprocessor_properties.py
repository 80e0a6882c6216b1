"""Property tests: every preprocessor turns any value into well-formed tensors or a BadValueError.

Covers the word-vocabulary and Hugging Face text preprocessors, the tabular preprocessor, the image
preprocessor (arbitrary bytes, and valid images of drawn sizes/modes/formats) and the log-mel audio
preprocessor (arbitrary bytes, and valid WAV files of drawn rates/lengths/channels/sample formats).
Known crashes are pinned as strict xfails with their minimal example, so they flip to XPASS once fixed.
"""

from __future__ import annotations

import io
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile
import torch
from hypothesis import example, given
from hypothesis import strategies as st
from PIL import Image
from torch import Tensor

from omnifuse.data.preprocess.audio import LogMelPreprocessor, load_audio
from omnifuse.data.preprocess.image import ImagePreprocessor
from omnifuse.data.preprocess.tabular import TabularPreprocessor
from omnifuse.data.preprocess.text import HFTextPreprocessor, VocabTextPreprocessor
from omnifuse.errors import BadValueError

TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=60)
WORDY = st.text(alphabet=st.sampled_from(list("the cat sat on a mat dog! 日本😀é\t\n,.")), max_size=60)
ANY_TEXT = st.one_of(TEXT, WORDY)
NOT_TEXT = st.one_of(
    st.none(),
    st.integers(),
    st.floats(),
    st.booleans(),
    st.binary(max_size=8),
    st.lists(st.integers(), max_size=2),
)
BERT_WORDS = [
    "[PAD]",
    "[UNK]",
    "[CLS]",
    "[SEP]",
    "[MASK]",
    "the",
    "cat",
    "sat",
    "on",
    "mat",
    "dog",
    "a",
    "##s",
]


def _check_ids(out: dict[str, Tensor], vocab_size: int, max_length: int) -> None:
    ids, mask = out["input_ids"], out["attention_mask"]
    assert ids.dtype == torch.long and mask.dtype == torch.long
    assert ids.ndim == 1 and ids.shape == mask.shape and 1 <= ids.shape[0] <= max(max_length, 1)
    assert int(ids.min()) >= 0 and int(ids.max()) < vocab_size
    assert set(mask.tolist()) <= {0, 1}


# -- word vocabulary ----------------------------------------------------------------------------------


@given(
    train=st.lists(ANY_TEXT, max_size=20),
    texts=st.lists(ANY_TEXT, min_size=1, max_size=5),
    max_vocab=st.integers(1, 50),
    min_freq=st.integers(1, 3),
    max_length=st.integers(1, 20),
)
def test_vocab_text_gives_valid_ids_for_any_text(
    train: list[str], texts: list[str], max_vocab: int, min_freq: int, max_length: int
) -> None:
    pre = VocabTextPreprocessor(max_vocab=max_vocab, min_freq=min_freq, max_length=max_length)
    pre.fit(train)

    assert pre.vocab[:2] == ["<pad>", "<unk>"] and len(pre.vocab) <= max_vocab + 2
    for text in texts:
        out = pre(text)
        _check_ids(out, len(pre.vocab), max_length)
        if out["attention_mask"].sum() == 0:  # no words: the one masked-out padding position
            assert out["input_ids"].tolist() == [0]
        else:
            assert bool((out["input_ids"] >= 1).all()) and bool((out["attention_mask"] == 1).all())


@given(train=st.lists(ANY_TEXT, min_size=1, max_size=10))
def test_vocab_text_round_trips_its_state(train: list[str]) -> None:
    pre = VocabTextPreprocessor(max_vocab=30)
    pre.fit(train)
    again = VocabTextPreprocessor()
    again.load_state_dict(pre.state_dict())

    for text in train:
        assert torch.equal(pre(text)["input_ids"], again(text)["input_ids"])


@given(value=NOT_TEXT)
def test_vocab_text_rejects_non_text_with_bad_value_error(value: Any) -> None:
    pre = VocabTextPreprocessor()
    pre.fit(["a b"])

    with pytest.raises(BadValueError, match="expected text, got"):
        pre(value)
    with pytest.raises(BadValueError, match="expected text, got"):
        pre.fit(["ok", value])


# -- Hugging Face tokenizer ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hf_text(tmp_path_factory: pytest.TempPathFactory) -> HFTextPreprocessor:
    """A tiny local BERT WordPiece tokenizer, loaded once (no hub)."""
    from transformers import BertTokenizer

    folder = tmp_path_factory.mktemp("bert_tokenizer")
    BertTokenizer(vocab={w: i for i, w in enumerate(BERT_WORDS)}).save_pretrained(str(folder))
    pre = HFTextPreprocessor(str(folder))
    pre.fit([])
    return pre


@given(text=ANY_TEXT, max_length=st.integers(2, 16))
@example(text="", max_length=2)
@example(text="cats " * 40, max_length=3)
def test_hf_text_gives_valid_ids_for_any_text(
    text: str, max_length: int, hf_text: HFTextPreprocessor
) -> None:
    hf_text.max_length = max_length
    out = hf_text(text)

    assert hf_text.vocab_size == len(BERT_WORDS)
    _check_ids(out, len(BERT_WORDS), max_length)
    assert out["input_ids"][0] == BERT_WORDS.index("[CLS]")


@given(value=NOT_TEXT)
def test_hf_text_rejects_non_text_with_bad_value_error(value: Any, hf_text: HFTextPreprocessor) -> None:
    with pytest.raises(BadValueError, match="expected text, got"):
        hf_text(value)


# -- tabular ------------------------------------------------------------------------------------------

MODERATE = st.floats(min_value=-1e12, max_value=1e12)
CELL = st.one_of(
    st.none(),
    MODERATE,
    st.sampled_from([math.inf, -math.inf, math.nan]),
    st.integers(-(10**9), 10**9),
    st.booleans(),
    TEXT,
    st.sampled_from(["1.5", " 3 ", "nan", "NaN", "inf", "-Infinity", "1e400", "", "  ", "x", "1,5"]),
)
COLUMNS = st.dictionaries(
    st.text(alphabet="abcxyz_", min_size=1, max_size=4),
    st.sampled_from(["numeric", "categorical"]),
    min_size=1,
    max_size=4,
)


Rows = tuple[dict[str, str], list[dict[str, Any]]]  # (column -> kind, training rows)


def _rows(columns: st.SearchStrategy[dict[str, str]]) -> st.SearchStrategy[Rows]:
    def rows_for(cols: dict[str, str]) -> st.SearchStrategy[Rows]:
        keys = st.sampled_from([*cols, "unrelated"])
        row = st.dictionaries(keys, CELL, max_size=len(cols) + 1)
        return st.tuples(st.just(cols), st.lists(row, min_size=1, max_size=12))

    return columns.flatmap(rows_for)


def _check_tabular(pre: TabularPreprocessor, out: dict[str, Tensor]) -> None:
    n, k = len(pre.numeric), len(pre.categorical)
    assert out["numeric"].shape == (n,) and out["numeric"].dtype == torch.float32
    assert out["numeric_missing"].shape == (n,) and set(out["numeric_missing"].tolist()) <= {0.0, 1.0}
    assert out["categorical"].shape == (k,) and out["categorical"].dtype == torch.long
    assert bool(torch.isfinite(out["numeric"]).all()), out["numeric"]
    assert bool((out["numeric"][out["numeric_missing"] == 1] == 0).all())
    for column_id, size in zip(out["categorical"].tolist(), pre.cardinalities(), strict=True):
        assert 0 <= column_id < size


@given(data=_rows(COLUMNS))
def test_tabular_gives_finite_tensors_or_bad_value_error(data: Rows) -> None:
    columns, rows = data
    pre = TabularPreprocessor(columns)
    pre.fit(rows)

    assert all(math.isfinite(pre.mean[c]) and pre.std[c] > 0 for c in pre.numeric)
    for row in rows:
        try:
            out = pre(row)
        except BadValueError as err:
            assert err.column in pre.numeric and err.column in row
            assert repr(row[err.column]) in str(err)
            continue
        _check_tabular(pre, out)


@given(big=st.floats(min_value=1e160, max_value=1e308))
@example(big=1e200)
def test_tabular_fit_survives_huge_finite_numbers(big: float) -> None:
    pre = TabularPreprocessor({"a": "numeric"})
    pre.fit([{"a": big}, {"a": 0.0}])

    assert math.isfinite(pre.mean["a"]) and math.isfinite(pre.std["a"])


@given(exponent=st.integers(309, 2000))
@example(exponent=400)
def test_tabular_rejects_integers_beyond_float_range_with_bad_value_error(exponent: int) -> None:
    pre = TabularPreprocessor({"a": "numeric"})

    with pytest.raises(BadValueError):
        pre({"a": 10**exponent})


@given(big=st.floats(min_value=3.5e38, max_value=1e308))
@example(big=1e39)
def test_tabular_output_stays_finite_beyond_float32_range(big: float) -> None:
    pre = TabularPreprocessor({"a": "numeric"})
    try:
        out = pre({"a": big})
    except BadValueError:
        return
    assert bool(torch.isfinite(out["numeric"]).all()), out["numeric"]


# -- image --------------------------------------------------------------------------------------------

IMAGE_MAGIC = [b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF89a", b"BM", b"II*\x00", b"MM\x00*", b"RIFF"]
# (format, mode) pairs Pillow writes; modes cover palette, alpha, 1-bit, 16/32-bit, float and CMYK.
IMAGE_KINDS = [
    ("PNG", "RGB"), ("PNG", "RGBA"), ("PNG", "L"), ("PNG", "LA"), ("PNG", "P"), ("PNG", "1"),
    ("PNG", "I;16"), ("TIFF", "I"), ("JPEG", "RGB"), ("JPEG", "L"), ("JPEG", "CMYK"), ("BMP", "RGB"),
    ("GIF", "P"), ("TIFF", "F"), ("TIFF", "RGBA"), ("WEBP", "RGB"), ("WEBP", "RGBA"),
]  # fmt: skip


def _image_bytes(fmt: str, mode: str, width: int, height: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    if mode == "I;16":
        image = Image.fromarray(rng.integers(0, 65536, (height, width), dtype=np.uint16))
    elif mode == "I":
        image = Image.fromarray(rng.integers(-(2**20), 2**20, (height, width), dtype=np.int32))
    elif mode == "F":
        image = Image.fromarray(rng.normal(100, 500, (height, width)).astype(np.float32))
    else:
        rgba = rng.integers(0, 256, (height, width, 4), dtype=np.uint8)  # (H, W, 4)
        image = Image.fromarray(rgba, "RGBA").convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


@given(
    data=st.one_of(
        st.binary(max_size=300),
        st.builds(lambda head, tail: head + tail, st.sampled_from(IMAGE_MAGIC), st.binary(max_size=200)),
    )
)
@example(data=b"")
@example(data=b"\x89PNG\r\n\x1a\n")
def test_image_arbitrary_bytes_decode_or_raise_bad_value_error(data: bytes) -> None:
    pre = ImagePreprocessor(size=8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            out = pre(data)
        except BadValueError as err:
            assert f"<{len(data)} bytes>" in str(err) or "0 bytes" in str(err)
            return
    assert out["pixels"].shape == (3, 8, 8) and out["pixels"].dtype == torch.uint8


@given(
    kind=st.sampled_from(IMAGE_KINDS),
    width=st.integers(1, 40),
    height=st.integers(1, 40),
    seed=st.integers(0, 2**16),
    size=st.integers(1, 12),
    channels=st.sampled_from([1, 3]),
    cut=st.none() | st.floats(0.05, 0.95),
)
def test_image_valid_or_truncated_images_give_configured_pixels(
    kind: tuple[str, str], width: int, height: int, seed: int, size: int, channels: int, cut: float | None
) -> None:
    data = _image_bytes(*kind, width, height, seed)
    if cut is not None:  # a truncated download: decodes (Pillow pads some formats) or a BadValueError
        data = data[: max(1, int(len(data) * cut))]
    pre = ImagePreprocessor(size=size, channels=channels)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow warns about the corrupt EXIF of cut TIFFs
            out = pre(data)
    except BadValueError:
        assert cut is not None, f"a valid {kind} {width}x{height} image was refused"
        return
    assert out["pixels"].shape == (channels, size, size) and out["pixels"].dtype == torch.uint8


@given(width=st.integers(1, 64), height=st.integers(1, 64))
def test_image_pixel_limit_is_a_bad_value_error(width: int, height: int) -> None:
    data = _image_bytes("PNG", "RGB", width, height, 0)
    pre = ImagePreprocessor(size=4, max_pixels=width * height - 1)

    with pytest.raises(BadValueError, match="pixels"):
        pre(data)


# -- audio --------------------------------------------------------------------------------------------

AUDIO_MAGIC = [b"", b"RIFF", b"RIFF\x24\x00\x00\x00WAVEfmt ", b"fLaC", b"OggS", b"ID3", b"\xff\xfb", b"FORM"]
WAV_SUBTYPES = ["PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"]


@pytest.fixture(scope="module")
def log_mel() -> LogMelPreprocessor:
    """One preprocessor for every example (the window and filterbank are built once)."""
    return LogMelPreprocessor(sample_rate=16000, n_mels=16, max_seconds=1.0)


def _wav_bytes(samples: np.ndarray, rate: int, subtype: str) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, rate, format="WAV", subtype=subtype)
    return buffer.getvalue()


def _check_mel(pre: LogMelPreprocessor, out: dict[str, Tensor]) -> None:
    mel, mask = out["mel"], out["mask"]
    assert mel.ndim == 2 and mel.shape[0] >= 1 and mel.shape[1] == pre.n_mels and mel.dtype == torch.float32
    assert mask.shape == (mel.shape[0],) and mask.dtype == torch.bool and bool(mask.all())
    assert bool(torch.isfinite(mel).all())


@given(
    data=st.one_of(
        st.binary(max_size=300),
        st.builds(lambda head, tail: head + tail, st.sampled_from(AUDIO_MAGIC), st.binary(max_size=200)),
    )
)
@example(data=b"")
@example(data=b"RIFF")
def test_audio_arbitrary_bytes_decode_or_raise_bad_value_error(
    data: bytes, log_mel: LogMelPreprocessor
) -> None:
    try:
        out = log_mel(data)
    except BadValueError as err:
        assert "bytes" in str(err)
        return
    _check_mel(log_mel, out)


@given(
    rate=st.integers(8000, 48000),
    length=st.integers(1, 8000),
    channels=st.integers(1, 3),
    subtype=st.sampled_from(WAV_SUBTYPES),
    amplitude=st.sampled_from([0.0, 1e-4, 0.5, 1.0]),
    seed=st.integers(0, 2**16),
    cut=st.none() | st.floats(0.05, 0.95),
)
@example(rate=8000, length=1, channels=1, subtype="PCM_16", amplitude=0.0, seed=0, cut=None)
@example(rate=48000, length=8000, channels=3, subtype="PCM_U8", amplitude=1.0, seed=0, cut=None)
def test_audio_valid_wav_gives_finite_log_mel(
    rate: int,
    length: int,
    channels: int,
    subtype: str,
    amplitude: float,
    seed: int,
    cut: float | None,
    log_mel: LogMelPreprocessor,
) -> None:
    samples = np.random.default_rng(seed).uniform(-amplitude, amplitude, (length, channels))
    data = _wav_bytes(samples, rate, subtype)
    if cut is not None:  # a truncated download: fewer frames or a BadValueError, never a crash
        data = data[: max(1, int(len(data) * cut))]
    try:
        out = log_mel(data)
    except BadValueError:
        assert cut is not None, f"a valid {subtype} WAV ({rate} Hz, {length}x{channels}) was refused"
        return
    _check_mel(log_mel, out)
    wave = load_audio(data, log_mel.sample_rate, log_mel.max_seconds)
    assert out["mel"].shape[0] == 1 + wave.shape[0] // log_mel.hop_length


@given(value=st.floats(min_value=1e19, max_value=3e38), length=st.integers(1, 400))
@example(value=1e19, length=1)
def test_audio_float_wav_far_outside_unit_range_stays_finite(
    value: float, length: int, log_mel: LogMelPreprocessor
) -> None:
    data = _wav_bytes(np.full(length, value, dtype=np.float32), 16000, "FLOAT")
    try:
        out = log_mel(data)
    except BadValueError:
        return
    _check_mel(log_mel, out)


@given(value=st.one_of(st.none(), st.integers(), st.floats(), st.lists(st.integers(), max_size=2)))
def test_audio_and_image_reject_other_types_with_bad_value_error(
    value: Any, log_mel: LogMelPreprocessor
) -> None:
    with pytest.raises(BadValueError, match="expected an audio file path or bytes"):
        log_mel(value)
    with pytest.raises(BadValueError, match="expected an image file path or bytes"):
        ImagePreprocessor(size=4)(value)


@given(name=st.text(alphabet="abc", min_size=1, max_size=5))
def test_missing_media_paths_are_bad_value_errors(
    name: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    folder = tmp_path_factory.getbasetemp()
    with pytest.raises(BadValueError, match="does not exist"):
        LogMelPreprocessor(n_mels=4)(Path(folder, f"{name}.wav"))
    with pytest.raises(BadValueError, match="does not exist"):
        ImagePreprocessor(size=4)(Path(folder, f"{name}.png"))

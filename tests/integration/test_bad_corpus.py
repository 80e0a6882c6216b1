"""The bad-input corpus (tests/assets/bad, written by scripts/make_bad_corpus.py), one test per item.

Expected outcome of each item (bad = with ``data.on_bad_row: error`` a BadRowError naming column, row,
value and fix before training; with ``skip`` the row is left out and listed in bad_rows.csv):

images
  zero.png, truncated.png, truncated.jpg, text.png, a directory path   bad ("empty", "truncated",
                                                                        "cannot decode", "is a directory")
  big.png above ``max_pixels``                 bad (max_pixels=1000: the decompression-bomb guard)
  cmyk.jpg, gray16.png, rgba.png (transparent -> white), palette.png, one_pixel.png  fine, (3, 16, 16) uint8
  animated.gif                                 fine, the first (red) frame is used
  exif_rotated.jpg                             fine, EXIF orientation 6 applied (red half ends on top)
audio
  zero.wav, truncated_header.wav               bad ("empty (0 bytes)", "truncated or corrupt")
  silent, 10 ms, 8-bit, 24-bit, float, stereo, 6-channel, 8 kHz, 96 kHz   fine, finite log-mel frames
  10-minute clip (generated in tmp_path)       fine, cropped to max_seconds; only those frames are read
text
  empty cell, whitespace only                  bad ("the cell is empty"); with allow_missing: absent
  non-UTF-8 bytes in the table                 DataError from read_table naming the line and the byte
  100,000 characters                           fine, truncated to the preprocessor's max_length
  emoji and CJK                                fine
table
  missing column                               DataError naming it, with "did you mean"
  duplicate column names, empty file, header only   DataError from read_table
  NaN in a numeric column                      fine, a missing value (numeric_missing = 1)
  inf / a stray string in a numeric column     bad ("is infinite", "is not a number")
  label unseen in training, at evaluation      bad ("not one of the classes seen in training")
config (Config.from_dict and the CLI)
  unknown key                                  ConfigError with "Did you mean"
  wrong type, value out of range               ConfigError naming the key, the value and what is expected
  unknown encoder name                         ConfigError listing the available encoders
"""

from __future__ import annotations

import importlib.util
import shutil
import time
import tracemalloc
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd
import pytest
import torch
import yaml
from rich.console import Console
from typer.testing import CliRunner

from omnifuse import Config
from omnifuse.api import prepare_data
from omnifuse.cli import app
from omnifuse.data.io import read_table
from omnifuse.data.preprocess.audio import LogMelPreprocessor, load_audio
from omnifuse.data.preprocess.image import ImagePreprocessor
from omnifuse.data.preprocess.text import VocabTextPreprocessor
from omnifuse.errors import BadRowError, BadValueError, ConfigError, DataError
from omnifuse.workflows.prepare import PreparedData, RunContext

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "assets" / "bad"
BAD_ROW = 4  # the row of the base table that gets the bad cell
runner = CliRunner()


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_bad_corpus", ROOT / "scripts" / "make_bad_corpus.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


corpus = _load_script()

CONFIG: dict[str, Any] = {
    "label": {"column": "animal", "task": "multiclass"},
    "columns": {
        "photo": {"type": "image", "encoder": {"name": "small_cnn", "size": 16}},
        "sound": {
            "type": "audio",
            "encoder": {"name": "mel_cnn", "n_mels": 16, "sample_rate": 8000, "max_seconds": 0.5},
        },
        "note": {"type": "text", "encoder": {"name": "bow", "embed_dim": 8}},
        "weight": {"type": "numeric"},
        "colour": {"type": "categorical"},
    },
    "fusion": "concat",
    "training": {"epochs": 1, "batch_size": 8},
}
ODD_IMAGES = [
    "cmyk.jpg",
    "gray16.png",
    "rgba.png",
    "palette.png",
    "one_pixel.png",
    "animated.gif",
    "exif_rotated.jpg",
    "big.png",
]
ODD_AUDIO = [
    "silent.wav",
    "short_10ms.wav",
    "pcm_u8.wav",
    "pcm_24.wav",
    "float.wav",
    "stereo.wav",
    "six_channel.wav",
    "rate_8k.wav",
    "rate_96k.wav",
]
NOTES = [
    "purr whiskers 🐱",
    "bark fetch 犬が好き",
    "hoot night 夜のふくろう",
    "purr nap",
    "bark run",
    "hoot tree",
]


def base_frame(n: int = 12) -> pd.DataFrame:
    """A clean table made only of odd-but-fine corpus files, three classes.

    File paths are relative: the table must sit in a folder holding a copy of the corpus (``write_table``).
    """
    return pd.DataFrame(
        {
            "photo": [f"images/{ODD_IMAGES[i % len(ODD_IMAGES)]}" for i in range(n)],
            "sound": [f"audio/{ODD_AUDIO[i % len(ODD_AUDIO)]}" for i in range(n)],
            "note": [NOTES[i % len(NOTES)] for i in range(n)],
            "weight": [float(i % 3) + 0.1 * i for i in range(n)],
            "colour": ["red" if i % 2 else "blue" for i in range(n)],
            "animal": [["cat", "dog", "owl"][i % 3] for i in range(n)],
        }
    ).astype({"weight": object, "note": object})


def write_table(folder: Path, frame: pd.DataFrame, name: str = "table.csv") -> Path:
    """Writes ``frame`` into ``folder`` beside a copy of the corpus (file cells must stay inside it)."""
    for part in ("images", "audio"):
        if not (folder / part).exists():
            shutil.copytree(CORPUS / part, folder / part)
    frame.to_csv(folder / name, index=False)
    return folder / name


def config(**data: Any) -> Config:
    raw = yaml.safe_load(yaml.safe_dump(CONFIG))
    raw["data"] = data
    return Config.from_dict(raw)


def prepare(cfg: Config, table: Path, out: Path, test: Path | None = None) -> PreparedData:
    """Everything training does before the first step (the table is also its own validation set)."""
    ctx = RunContext(out, Console(quiet=True), progress=False)
    out.mkdir(parents=True, exist_ok=True)
    return prepare_data(cfg, table, table, test, ctx)


# -- bad cells: an error before training, or skipped and listed ----------------------------------------

BAD_CELLS = [
    ("photo", "images/zero.png", r"zero\.png' is empty \(0 bytes\)"),
    ("photo", "images/truncated.png", r"truncated\.png' \(truncated or corrupt"),
    ("photo", "images/truncated.jpg", r"truncated\.jpg' \(truncated or corrupt"),
    ("photo", "images/text.png", r"text\.png' \(not a PNG/JPEG"),
    ("photo", "images", r"images' is a directory, not an image file"),
    ("sound", "audio/zero.wav", r"zero\.wav' is empty \(0 bytes\)"),
    ("sound", "audio/truncated_header.wav", r"truncated_header\.wav' \(truncated or corrupt"),
    ("note", "   ", r"the cell is empty"),
    ("note", None, r"the cell is empty"),
    ("weight", "inf", r"numeric column 'weight': inf is infinite"),
    ("weight", "heavy", r"numeric column 'weight': 'heavy' is not a number"),
]
IDS = [
    "zero_png",
    "truncated_png",
    "truncated_jpg",
    "text_as_png",
    "directory",
    "zero_wav",
    "truncated_wav",
    "whitespace_text",
    "empty_text",
    "inf",
    "stray_string",
]


def _with_bad_cell(tmp_path: Path, column: str, value: Any) -> Path:
    frame = base_frame()
    frame.loc[BAD_ROW, column] = value
    return write_table(tmp_path / "data", frame)


@pytest.mark.parametrize(("column", "value", "reason"), BAD_CELLS, ids=IDS)
def test_bad_cell_stops_before_training(tmp_path: Path, column: str, value: Any, reason: str) -> None:
    table = _with_bad_cell(tmp_path, column, value)
    pattern = rf"column '{column}' row {BAD_ROW}: .*{reason}.*; .*data\.on_bad_row: skip"
    with pytest.raises(BadRowError, match=pattern):
        prepare(config(), table, tmp_path / "out")


@pytest.mark.parametrize(("column", "value", "reason"), BAD_CELLS, ids=IDS)
def test_bad_cell_is_skipped_and_listed(tmp_path: Path, column: str, value: Any, reason: str) -> None:
    table = _with_bad_cell(tmp_path, column, value)
    data = prepare(config(on_bad_row="skip"), table, tmp_path / "out")
    assert [ex.index for ex in data.examples["train"]] == [i for i in range(12) if i != BAD_ROW]
    bad = pd.read_csv(tmp_path / "out" / "bad_rows.csv", keep_default_na=False)
    assert set(bad["row"]) == {BAD_ROW}
    assert set(bad["column"]) == {column}
    assert bad["reason"].str.contains(reason).all()
    assert (bad["fix"].str.len() > 0).all()


def test_empty_text_is_absent_with_allow_missing(tmp_path: Path) -> None:
    raw = yaml.safe_load(yaml.safe_dump(CONFIG))
    raw["columns"]["note"]["allow_missing"] = True
    table = _with_bad_cell(tmp_path, "note", "   ")
    data = prepare(Config.from_dict(raw), table, tmp_path / "out")
    rows = {ex.index: ex for ex in data.examples["train"]}
    assert len(rows) == 12
    assert rows[BAD_ROW].presence["note"] is False and rows[0].presence["note"] is True


def test_nan_is_missing_not_bad(tmp_path: Path) -> None:
    table = _with_bad_cell(tmp_path, "weight", None)
    data = prepare(config(), table, tmp_path / "out")
    rows = {ex.index: ex for ex in data.examples["train"]}
    assert rows[BAD_ROW].inputs["tabular"]["numeric_missing"].tolist() == [1.0]
    assert rows[0].inputs["tabular"]["numeric_missing"].tolist() == [0.0]


def test_long_emoji_and_cjk_text_are_fine(tmp_path: Path) -> None:
    frame = base_frame()
    frame.loc[BAD_ROW, "note"] = "purr " * 20_000  # 100,000 characters
    data = prepare(config(), write_table(tmp_path / "data", frame), tmp_path / "out")
    rows = {ex.index: ex for ex in data.examples["train"]}
    assert len(rows) == 12
    assert rows[BAD_ROW].inputs["note"]["input_ids"].shape == (256,)  # bow's default max_length
    pre = VocabTextPreprocessor(max_length=32)
    pre.fit(NOTES)
    assert pre("x" * 100_000 + " purr" * 100)["input_ids"].shape == (32,)
    ids = pre("bark fetch 犬が好き 🐱")["input_ids"].tolist()
    assert 1 not in ids  # every word, CJK and emoji included, is in the vocabulary


def test_unseen_label_at_evaluation_is_a_bad_row(tmp_path: Path) -> None:
    train = write_table(tmp_path / "data", base_frame())
    frame = base_frame()
    frame.loc[BAD_ROW, "animal"] = "zebra"
    test = write_table(tmp_path / "data", frame, "test.csv")
    with pytest.raises(
        BadRowError,
        match=rf"column 'animal' row {BAD_ROW}: label 'zebra' is not one of the "
        r"classes seen in training \('cat', 'dog', 'owl'\)",
    ):
        prepare(config(), train, tmp_path / "out", test)


# -- odd but fine files -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ODD_IMAGES)
def test_odd_images_decode(name: str) -> None:
    pixels = ImagePreprocessor(16)(CORPUS / "images" / name)["pixels"]
    assert pixels.shape == (3, 16, 16) and pixels.dtype == torch.uint8


def test_animated_gif_uses_the_first_frame_and_exif_rotation_is_applied() -> None:
    pre = ImagePreprocessor(16)
    gif = pre(CORPUS / "images" / "animated.gif")["pixels"].float()
    assert gif[0].mean() > 200 and gif[2].mean() < 50  # red, the first frame (the second is blue)
    rotated = pre(CORPUS / "images" / "exif_rotated.jpg")["pixels"].float()  # (3, H, W)
    top, bottom = rotated[:, :6].mean(dim=(1, 2)), rotated[:, -6:].mean(dim=(1, 2))
    assert top[0] > 180 and top[2] < 60  # the left (red) half, turned 90 degrees clockwise, is on top
    assert bottom[2] > 180 and bottom[0] < 60
    rgba = pre(CORPUS / "images" / "rgba.png")["pixels"]
    assert rgba[:, 0, 0].tolist() == [255, 255, 255]  # transparent -> white
    assert rgba[:, 0, 15].tolist() == [255, 0, 0]


def test_max_pixels_guard() -> None:
    with pytest.raises(BadValueError, match=r"big\.png' is 64x64 = 4096 pixels, above the limit of 1000"):
        ImagePreprocessor(16, max_pixels=1000)(CORPUS / "images" / "big.png")
    pixels = ImagePreprocessor(16, max_pixels=4096)(CORPUS / "images" / "big.png")["pixels"]
    assert pixels.shape == (3, 16, 16)


@pytest.mark.parametrize("name", ODD_AUDIO)
def test_odd_audio_decodes(name: str) -> None:
    out = LogMelPreprocessor(sample_rate=8000, n_mels=16, max_seconds=0.5)(CORPUS / "audio" / name)
    assert out["mel"].ndim == 2 and out["mel"].shape[1] == 16
    assert torch.isfinite(out["mel"]).all() and out["mask"].all()


def test_ten_minute_clip_is_cropped_without_reading_it_all(tmp_path: Path) -> None:
    path = corpus.write_long_clip(tmp_path / "long.wav", seconds=600)
    assert path.stat().st_size > 9_000_000
    tracemalloc.start()
    start = time.perf_counter()
    wave = load_audio(path, 8000, max_seconds=0.5)
    elapsed = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert wave.shape == (4000,)
    assert elapsed < 1.0
    assert peak < 1_000_000  # the whole clip as float32 would be 19 MB


# -- tables and config ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("non_utf8.csv", r"non_utf8\.csv' line 3: byte 0xe9 is not valid UTF-8; re-save the file as UTF-8"),
        ("duplicate_columns.csv", r"duplicate column names: 'note'; rename them"),
        ("empty.csv", r"empty\.csv' is empty \(no header row\)"),
        ("header_only.csv", r"header_only\.csv' has no rows"),
    ],
)
def test_unreadable_tables(name: str, message: str) -> None:
    with pytest.raises(DataError, match=message):
        read_table(CORPUS / "tables" / name)


def test_missing_column_suggests_the_close_one(tmp_path: Path) -> None:
    table = write_table(tmp_path / "data", base_frame().rename(columns={"colour": "color"}))
    with pytest.raises(DataError, match=r"has no column 'colour' \(did you mean 'color'\?\)"):
        prepare(config(), table, tmp_path / "out")


def test_duplicate_columns_in_a_dataframe() -> None:
    frame = pd.DataFrame([[1, 2]], columns=["a", "a"])
    with pytest.raises(DataError, match=r"duplicate column names: 'a'"):
        read_table(frame)


@pytest.mark.parametrize(
    ("section", "change", "message"),
    [
        ("training", {"epoch": 3}, r"training\.epoch: unknown key\. Did you mean 'epochs'\?"),
        ("training", {"epochs": "ten"}, r"training\.epochs: expected int, got str 'ten'"),
        ("data", {"valid_fraction": 1.5}, r"data\.valid_fraction: must be in \(0, 1\), got 1\.5"),
        ("training", {"batch_size": 0}, r"training\.batch_size: must be >= 1, got 0"),
    ],
)
def test_config_errors(section: str, change: dict[str, Any], message: str) -> None:
    raw = yaml.safe_load(yaml.safe_dump(CONFIG))
    raw.setdefault(section, {}).update(change)
    with pytest.raises(ConfigError, match=message):
        Config.from_dict(raw)


def test_unknown_encoder_lists_the_available_ones() -> None:
    raw = yaml.safe_load(yaml.safe_dump(CONFIG))
    raw["columns"]["note"]["encoder"]["name"] = "bowz"
    message = r"unknown encoder 'bowz'\. Did you mean 'bow'\? Available: .*textcnn"
    with pytest.raises(ConfigError, match=message):
        Config.from_dict(raw)


# -- through the CLI --------------------------------------------------------------------------------------


def _all_bad_table(tmp_path: Path) -> tuple[Path, dict[int, str]]:
    frame = pd.concat([base_frame(), base_frame()], ignore_index=True)
    for i, (column, value, _) in enumerate(BAD_CELLS):
        frame.loc[i * 2, column] = value
    return write_table(tmp_path / "data", frame), {i * 2: c for i, (c, _, _) in enumerate(BAD_CELLS)}


def _config_file(tmp_path: Path, **data: Any) -> Path:
    raw = yaml.safe_load(yaml.safe_dump(CONFIG))
    raw["data"] = {"valid_fraction": 0.25, **data}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


def test_cli_train_stops_on_the_first_bad_row(tmp_path: Path) -> None:
    table, _ = _all_bad_table(tmp_path)
    result = runner.invoke(
        app,
        [
            "train",
            "--config",
            str(_config_file(tmp_path)),
            "--train",
            str(table),
            "--out",
            str(tmp_path / "m"),
            "-q",
        ],
    )
    assert result.exit_code != 0
    assert isinstance(result.exception, BadRowError)
    assert not (tmp_path / "m" / "model.safetensors").exists()


def test_cli_train_skips_and_lists_every_bad_row(tmp_path: Path) -> None:
    table, expected = _all_bad_table(tmp_path)
    config_path = _config_file(tmp_path, on_bad_row="skip")
    result = runner.invoke(
        app,
        ["train", "--config", str(config_path), "--train", str(table), "--out", str(tmp_path / "m"), "-q"],
    )
    assert result.exit_code == 0, result.output
    bad = pd.read_csv(tmp_path / "m" / "bad_rows.csv")
    assert dict(zip(bad["row"], bad["column"], strict=True)) == expected
    assert (tmp_path / "m" / "model.safetensors").exists()


def test_cli_validate_lists_every_bad_row(tmp_path: Path) -> None:
    names = {c.name or getattr(c.callback, "__name__", "") for c in app.registered_commands}
    if "validate" not in names:
        pytest.skip("`omnifuse validate` is not registered in cli.py yet")
    table, expected = _all_bad_table(tmp_path)
    args = ["validate", "--config", str(_config_file(tmp_path)), "--data", str(table)]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "v")])
    assert result.exit_code == 1, result.output
    bad = pd.read_csv(tmp_path / "v" / "bad_rows.csv")
    assert dict(zip(bad["row"], bad["column"], strict=True)) == expected
    clean = write_table(tmp_path / "clean", base_frame())
    ok = runner.invoke(app, ["validate", "--config", str(_config_file(tmp_path)), "--data", str(clean)])
    assert ok.exit_code == 0, ok.output
    broken = runner.invoke(
        app,
        [
            "validate",
            "--config",
            str(_config_file(tmp_path)),
            "--data",
            str(CORPUS / "tables" / "non_utf8.csv"),
        ],
    )
    assert broken.exit_code == 2

"""Unit tests of manifest.json: written last by save_model, checked by load_model before anything else."""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from omnifuse.artifacts.folder import ASSETS, CONFIG, PREPROCESSORS, REQUIRED, WEIGHTS, load_model, save_model
from omnifuse.artifacts.manifest import (
    CHUNK,
    MANIFEST,
    file_digest,
    listed_files,
    verify_manifest,
    write_manifest,
)
from omnifuse.build import build_model, make_preprocessors
from omnifuse.config.sections import Config
from omnifuse.data.dataset import fit_values, input_specs
from omnifuse.errors import ModelDirError
from omnifuse.tasks import make_task
from omnifuse.version import __version__

FRAME = pd.DataFrame(
    {"review": ["good film", "bad film", "great fun", "awful plot"], "y": ["p", "n", "p", "n"]}
)


def save_tiny_model(folder: Path) -> None:
    """A bag-of-words text model saved with save_model."""
    cfg = Config.from_dict(
        {
            "label": {"column": "y", "task": "binary"},
            "columns": {"review": {"type": "text", "encoder": {"name": "bow", "embed_dim": 4}}},
            "fusion": "concat",
            "head": {"hidden_dim": 0},
        }
    )
    preprocessors = make_preprocessors(cfg)
    for spec in input_specs(cfg):
        preprocessors[spec.name].fit(fit_values(spec, FRAME, Path(".")))
    task = make_task("binary")
    task.fit(list(FRAME["y"]))
    save_model(folder, cfg, preprocessors, task, build_model(cfg, preprocessors, task))


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("manifest") / "model"
    save_tiny_model(folder)
    (folder / ASSETS / "review" / "encoder" / "note.json").write_text("{}")  # an asset file to list
    write_manifest(folder, REQUIRED, ASSETS)
    return folder


@pytest.fixture
def copy(saved: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    shutil.copytree(saved, folder, symlinks=True)
    return folder


def _manifest(folder: Path) -> dict:  # type: ignore[type-arg]
    return json.loads((folder / MANIFEST).read_text())  # type: ignore[no-any-return]


def test_manifest_lists_what_load_reads(saved: Path) -> None:
    data = _manifest(saved)
    assert data["format"] == 1 and data["omnifuse_version"] == __version__
    names = sorted(data["files"])
    assert {CONFIG, PREPROCESSORS, WEIGHTS, "assets/review/encoder/note.json"} <= set(names)
    assert all(n in REQUIRED or n.startswith("assets/") for n in names)
    for name, entry in data["files"].items():
        raw = (saved / name).read_bytes()
        assert entry == {"sha256": hashlib.sha256(raw).hexdigest(), "size": len(raw)}
    assert MANIFEST not in names


def test_manifest_is_written_last(saved: Path) -> None:
    newest = max((saved / n).stat().st_mtime_ns for n in _manifest(saved)["files"])
    assert (saved / MANIFEST).stat().st_mtime_ns >= newest
    assert not list(saved.glob(f".{MANIFEST}.*.tmp"))


def test_training_by_products_are_not_listed_and_do_not_matter(copy: Path) -> None:
    for name in ("metrics.json", "report.md", "README.md", "train_log.csv", "split.json", "bad_rows.csv"):
        (copy / name).write_text("x")
    for sub in ("checkpoints", "plots", "evaluation"):
        (copy / sub).mkdir()
        (copy / sub / "f.bin").write_bytes(b"x")
    assert not [
        n for n in listed_files(copy, REQUIRED, ASSETS) if not (n in REQUIRED or n.startswith("assets/"))
    ]
    load_model(copy)


def test_round_trip_loads(saved: Path) -> None:
    assert load_model(saved).task.classes == ["n", "p"]


def test_save_removes_a_stale_manifest_first(copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import omnifuse.artifacts.folder as artifacts

    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(artifacts, "save_weights", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        save_tiny_model(copy)
    with pytest.raises(ModelDirError, match=rf"has no {MANIFEST} .*interrupted\): re-save the model"):
        load_model(copy)


def test_missing_manifest(copy: Path) -> None:
    (copy / MANIFEST).unlink()
    with pytest.raises(
        ModelDirError,
        match=rf"model has no manifest\.json \(saved before manifests existed, or saving was interrupted\): "
        rf"re-save the model with this version \(omnifuse {__version__}\), or re-train it",
    ):
        load_model(copy)


@pytest.mark.parametrize("name", [CONFIG, PREPROCESSORS, WEIGHTS, "assets/review/encoder/note.json"])
def test_changed_file_is_tampered(copy: Path, name: str) -> None:
    path = copy / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1  # one bit, same size: only the hash can tell
    path.write_bytes(bytes(data))
    with pytest.raises(
        ModelDirError,
        match=rf"tampered or damaged: {name} \(its sha256 differs from manifest\.json\); "
        r"restore the model folder from the original, or re-train",
    ):
        load_model(copy)


def test_same_size_check_is_not_enough_for_changed_size(copy: Path) -> None:
    (copy / "assets/review/encoder/note.json").write_text("{} ")
    with pytest.raises(ModelDirError, match=r"tampered or damaged: assets/review/encoder/note\.json"):
        load_model(copy)


def test_listed_asset_missing(copy: Path) -> None:
    (copy / "assets/review/encoder/note.json").unlink()
    with pytest.raises(
        ModelDirError,
        match=r"assets/review/encoder/note\.json is listed in manifest\.json but missing; "
        r"copy the whole model folder again",
    ):
        load_model(copy)


def test_required_file_missing_keeps_the_incomplete_message(copy: Path) -> None:
    (copy / WEIGHTS).unlink()
    with pytest.raises(ModelDirError, match=r"is incomplete: missing model\.safetensors"):
        load_model(copy)


def test_extra_file_under_assets(copy: Path) -> None:
    (copy / ASSETS / "review" / "preprocessor" / "extra.txt").write_text("?")
    (copy / ASSETS / "zz.txt").write_text("?")
    with pytest.raises(
        ModelDirError,
        match=r"unexpected file assets/review/preprocessor/extra\.txt \(not in manifest\.json; 2 in all\); "
        r"omnifuse never wrote it: delete it, or restore the model folder from the original",
    ):
        load_model(copy)


def test_extra_symlinked_folder_under_assets(copy: Path, tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (copy / ASSETS / "review" / "linked").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(ModelDirError, match=r"unexpected file assets/review/linked "):
        load_model(copy)


def test_incompatible_version_in_manifest(copy: Path) -> None:
    data = _manifest(copy)
    data["omnifuse_version"] = "99.0.0"
    (copy / MANIFEST).write_text(json.dumps(data))
    with pytest.raises(
        ModelDirError,
        match=rf"was saved by omnifuse 99\.0\.0, this is {__version__}; install omnifuse==99\.0\.0",
    ):
        load_model(copy)


def test_manifest_not_json(copy: Path) -> None:
    (copy / MANIFEST).write_text("{")
    with pytest.raises(ModelDirError, match=r"manifest\.json is not valid JSON \(.*\); re-save the model"):
        load_model(copy)


@pytest.mark.parametrize(
    "files",
    [
        None,
        [],
        {"config.yaml": {"sha256": 1, "size": 3}},
        {"../outside.txt": {"sha256": "00", "size": 3}},
        {"/etc/passwd": {"sha256": "00", "size": 3}},
    ],
)
def test_damaged_manifest(copy: Path, files: object) -> None:
    data = _manifest(copy)
    data["files"] = files
    (copy / MANIFEST).write_text(json.dumps(data))
    with pytest.raises(
        ModelDirError, match=r"manifest\.json is damaged \(no valid 'files' mapping\); re-save"
    ):
        verify_manifest(copy, REQUIRED, ASSETS)


def test_manifest_that_is_a_list(copy: Path) -> None:
    (copy / MANIFEST).write_text("[]")
    with pytest.raises(ModelDirError, match=r"manifest\.json is damaged"):
        load_model(copy)


def test_file_digest_streams_large_files(tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    data = bytes(range(256)) * (3 * CHUNK // 256 + 7)  # a few chunks plus a partial one
    path.write_bytes(data)
    assert CHUNK == 1 << 20
    assert file_digest(path) == hashlib.sha256(data).hexdigest()


def test_hashing_is_fast(tmp_path: Path) -> None:
    path = tmp_path / "weights.bin"
    path.write_bytes(b"\0" * (64 << 20))
    start = time.perf_counter()
    file_digest(path)
    assert time.perf_counter() - start < 2.0  # sha256 runs at hundreds of MB/s

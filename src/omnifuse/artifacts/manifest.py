"""manifest.json: the sha256 and size of every file ``load_model`` reads, checked before any is read.

Listed: config.yaml, preprocessors.json, model.safetensors and every file under assets/. Not listed
(never read when loading, and some are rewritten after saving): checkpoints/, train_log.csv,
metrics.json, report.md, README.md, plots/, evaluation/, bad_rows.csv, split.json. The manifest is
written last, so a folder whose saving was interrupted has none and is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path, PurePosixPath
from typing import Any

from omnifuse.errors import ModelDirError
from omnifuse.training.checkpoint import atomic_write
from omnifuse.version import __version__, compatible

MANIFEST = "manifest.json"
FORMAT = 1
CHUNK = 1 << 20  # 1 MiB: hashing streams, so large weights never sit in memory twice
RESAVE = f"re-save the model with this version (omnifuse {__version__}), or re-train it"


def file_digest(path: Path) -> str:
    """The hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def listed_files(folder: Path, top_files: tuple[str, ...], assets: str) -> list[str]:
    """The manifest's entries: ``top_files`` plus every file (or link) under ``folder/assets``, as
    sorted POSIX paths relative to ``folder``."""
    names = [name for name in top_files if (folder / name).is_file()]
    root = folder / assets
    if root.is_dir():
        for current, dirs, files in os.walk(root, followlinks=False):
            here = Path(current)
            links = [d for d in dirs if (here / d).is_symlink()]  # not walked: listed, so they stand out
            for name in [*files, *links]:
                names.append((here / name).relative_to(folder).as_posix())
    return sorted(names)


def write_manifest(folder: Path, top_files: tuple[str, ...], assets: str) -> None:
    """Atomically writes ``folder/manifest.json`` for the files ``listed_files`` finds; call it last."""
    files = {
        name: {"sha256": file_digest(folder / name), "size": (folder / name).stat().st_size}
        for name in listed_files(folder, top_files, assets)
    }
    data = {"format": FORMAT, "omnifuse_version": __version__, "files": files}
    text = json.dumps(data, indent=2)
    atomic_write(folder / MANIFEST, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def verify_manifest(folder: Path, top_files: tuple[str, ...], assets: str) -> None:
    """Checks every listed file against manifest.json, and that assets/ holds nothing unlisted.

    Raises:
        ModelDirError: no or a damaged manifest, another omnifuse version, a listed file missing or
            changed, or a file under assets/ that the manifest does not list.
    """
    files = _read_manifest(folder)
    for name, entry in files.items():
        path = folder / name
        if not path.is_file():
            raise ModelDirError(
                f"{folder}: {name} is listed in {MANIFEST} but missing; copy the whole model folder "
                "again from where it was trained"
            )
        if path.stat().st_size != entry["size"] or file_digest(path) != entry["sha256"]:
            raise ModelDirError(
                f"{folder}: tampered or damaged: {name} (its sha256 differs from {MANIFEST}); "
                "restore the model folder from the original, or re-train"
            )
    extra = [name for name in listed_files(folder, top_files, assets) if name not in files]
    if extra:
        raise ModelDirError(
            f"{folder}: unexpected file {extra[0]} (not in {MANIFEST}; {len(extra)} in all); "
            "omnifuse never wrote it: delete it, or restore the model folder from the original"
        )


def _read_manifest(folder: Path) -> dict[str, dict[str, Any]]:
    path = folder / MANIFEST
    if not path.is_file():
        raise ModelDirError(
            f"{folder} has no {MANIFEST} (saved before manifests existed, or saving was "
            f"interrupted): {RESAVE}"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelDirError(f"{path} is not valid JSON ({exc}); {RESAVE}") from None
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, dict) or not all(_valid_entry(n, e) for n, e in files.items()):
        raise ModelDirError(f"{path} is damaged (no valid 'files' mapping); {RESAVE}")
    saved = str(data.get("omnifuse_version", "unknown"))
    if not compatible(saved, __version__):
        raise ModelDirError(
            f"{folder} was saved by omnifuse {saved}, this is {__version__}; "
            f"install omnifuse=={saved} to load it, or re-train"
        )
    return files


def _valid_entry(name: Any, entry: Any) -> bool:
    """A relative path that stays inside the folder, with a sha256 string and an int size."""
    if not isinstance(name, str) or not isinstance(entry, dict):
        return False
    parts = PurePosixPath(name).parts
    inside = bool(parts) and not PurePosixPath(name).is_absolute() and ".." not in parts and "\\" not in name
    return inside and isinstance(entry.get("sha256"), str) and isinstance(entry.get("size"), int)

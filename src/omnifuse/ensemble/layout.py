"""The ensemble model folder: ``ensemble.json``, ``members/<i>/`` (ordinary model folders), ``manifest.json``.

``manifest.json`` (written last) holds the sha256 of ``ensemble.json`` and of every member's own
``manifest.json``, which in turn covers that member's files: changing, adding or removing any of them makes
loading refuse the folder. Not covered (rewritten after saving, never read when loading): metrics.json,
report.md, README.md, plots/, evaluation/, and each member's own unlisted files (checkpoints, logs).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from omnifuse.artifacts.manifest import MANIFEST, verify_manifest, write_manifest
from omnifuse.errors import ModelDirError
from omnifuse.training.checkpoint import atomic_write

ENSEMBLE = "ensemble.json"
MEMBERS = "members"
FORMAT = 1
NO_ASSETS = "assets"  # an ensemble has no assets/ of its own: a file put there is refused as unexpected


def is_ensemble(folder: str | Path) -> bool:
    """Whether ``folder`` is an ensemble model folder (it holds ensemble.json)."""
    return (Path(folder) / ENSEMBLE).is_file()


def single_model_only(folder: str | Path) -> str:
    """The message for a command that needs one model (explain, embed, export, serve) given an ensemble."""
    return (f"{folder} is an ensemble model folder ({ENSEMBLE}): it predicts through omnifuse.load, "
            "`omnifuse predict` and `omnifuse evaluate`; explain, embed, export and serve work on one "
            f"model: pass one of its members, e.g. --model {Path(folder) / MEMBERS / '0'}")


def member_dir(folder: Path, index: int) -> Path:
    """The folder of member ``index``."""
    return folder / MEMBERS / str(index)


def member_manifests(folder: Path) -> tuple[str, ...]:
    """``members/<i>/manifest.json`` of every member folder on disk, in member order."""
    root = folder / MEMBERS
    names = [p.name for p in root.iterdir() if p.is_dir()] if root.is_dir() else []
    ordered = sorted(names, key=lambda n: (not n.isdigit(), int(n) if n.isdigit() else 0, n))
    return tuple(f"{MEMBERS}/{name}/{MANIFEST}" for name in ordered)


def write_ensemble(folder: Path, data: dict[str, Any]) -> None:
    """Writes ``ensemble.json`` and then the manifest over it and the members' manifests (last)."""
    (folder / MANIFEST).unlink(missing_ok=True)
    text = json.dumps({"format": FORMAT, **data}, indent=2, default=str)
    atomic_write(folder / ENSEMBLE, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    write_manifest(folder, (ENSEMBLE, *member_manifests(folder)), NO_ASSETS)


def read_ensemble(folder: Path) -> tuple[dict[str, Any], list[tuple[Path, int]]]:
    """Verifies the manifest, then reads ``ensemble.json``.

    Returns:
        The whole ensemble.json, and (member folder, weight) of every member (weight 0: not selected).

    Raises:
        ModelDirError: the manifest does not match (a changed, added or removed file), or ensemble.json is
            damaged (not JSON, no members, a member path that is not ``members/<i>``, a bad weight).
    """
    verify_manifest(folder, (ENSEMBLE, *member_manifests(folder)), NO_ASSETS)
    path = folder / ENSEMBLE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelDirError(f"{path} is not valid JSON ({exc}); restore the ensemble folder") from None
    members = data.get("members") if isinstance(data, dict) else None
    if not isinstance(members, list) or not members or not all(_valid_member(i, m) for i, m in
                                                               enumerate(members)):
        raise ModelDirError(f"{path} is damaged (its 'members' must list members/<i> with an integer "
                            "weight each); restore the ensemble folder, or re-train")
    if not any(m["weight"] > 0 for m in members):
        raise ModelDirError(f"{path}: no member has a weight above 0; restore the ensemble folder")
    return data, [(folder / m["path"], int(m["weight"])) for m in members]


def _valid_member(index: int, entry: Any) -> bool:
    if not isinstance(entry, dict):
        return False
    weight = entry.get("weight")
    valid_weight = isinstance(weight, int) and not isinstance(weight, bool) and weight >= 0
    return entry.get("path") == f"{MEMBERS}/{index}" and valid_weight


def remove_ensemble(folder: Path) -> None:
    """Deletes an ensemble's own files (ensemble.json, members/, manifest.json), for ``--overwrite``."""
    for name in (MANIFEST, ENSEMBLE):
        (folder / name).unlink(missing_ok=True)
    shutil.rmtree(folder / MEMBERS, ignore_errors=True)

"""The ensemble folder's ensemble.json and manifest: written, read, and refused when changed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from omnifuse.ensemble.layout import ENSEMBLE, is_ensemble, read_ensemble, write_ensemble
from omnifuse.errors import ModelDirError


def _folder(tmp_path: Path, weights: list[int], paths: list[str] | None = None) -> Path:
    """An ensemble folder whose members are stand-in folders holding only a manifest.json."""
    for i in range(len(weights)):
        (tmp_path / "members" / str(i)).mkdir(parents=True)
        (tmp_path / "members" / str(i) / "manifest.json").write_text(json.dumps({"member": i}))
    members: list[dict[str, Any]] = [
        {"path": p, "weight": w}
        for p, w in zip(paths or [f"members/{i}" for i in range(len(weights))], weights, strict=True)
    ]
    write_ensemble(tmp_path, {"metric": "accuracy", "members": members})
    return tmp_path


def test_written_ensemble_reads_back_with_the_weighted_members(tmp_path: Path) -> None:
    folder = _folder(tmp_path, [2, 0, 1])
    assert is_ensemble(folder)
    data, chosen = read_ensemble(folder)
    assert data["format"] == 1 and data["metric"] == "accuracy"
    assert chosen == [(folder / "members/0", 2), (folder / "members/1", 0), (folder / "members/2", 1)]
    listed = json.loads((folder / "manifest.json").read_text())["files"]
    assert sorted(listed) == [ENSEMBLE, "members/0/manifest.json", "members/1/manifest.json",
                              "members/2/manifest.json"]


def test_a_changed_ensemble_json_is_refused(tmp_path: Path) -> None:
    folder = _folder(tmp_path, [1, 1])
    data = json.loads((folder / ENSEMBLE).read_text())
    data["members"][1]["weight"] = 5
    (folder / ENSEMBLE).write_text(json.dumps(data))
    with pytest.raises(ModelDirError, match="tampered or damaged: ensemble.json"):
        read_ensemble(folder)


def test_a_swapped_added_or_removed_member_is_refused(tmp_path: Path) -> None:
    folder = _folder(tmp_path, [1, 1])
    (folder / "members/1/manifest.json").write_text(json.dumps({"another": "model"}))
    with pytest.raises(ModelDirError, match="tampered or damaged: members/1/manifest.json"):
        read_ensemble(folder)
    other = _folder(tmp_path / "added", [1])
    (other / "members/7").mkdir()
    (other / "members/7/manifest.json").write_text("{}")
    with pytest.raises(ModelDirError, match="unexpected file members/7/manifest.json"):
        read_ensemble(other)
    removed = _folder(tmp_path / "removed", [1, 1])
    (removed / "members/1/manifest.json").unlink()
    with pytest.raises(ModelDirError, match="members/1/manifest.json is listed in manifest.json but missing"):
        read_ensemble(removed)


def test_a_damaged_member_list_is_refused(tmp_path: Path) -> None:
    outside = _folder(tmp_path / "outside", [1], paths=["../elsewhere"])
    with pytest.raises(ModelDirError, match="its 'members' must list members/<i>"):
        read_ensemble(outside)
    unweighted = _folder(tmp_path / "zero", [0, 0])
    with pytest.raises(ModelDirError, match="no member has a weight above 0"):
        read_ensemble(unweighted)

"""build_atomically: a finished build is reused, and one finished by another process meanwhile is kept."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from omnifuse.datasets._common import build_atomically, is_built

PARAMS = {"builder": "test", "seed": 0}


def _fill(text: str) -> Callable[[Path], None]:
    def fill(folder: Path) -> None:
        for split in ("train", "valid", "test"):
            (folder / f"{split}.csv").write_text(f"x\n{text}\n")
    return fill


def test_a_build_finished_by_another_process_meanwhile_is_kept(tmp_path: Path) -> None:
    out = tmp_path / "table"

    def slow_fill(folder: Path) -> None:
        # while this build runs, another one (same parameters) finishes and a reader starts on it
        build_atomically(out, PARAMS, _fill("first"))
        _fill("second")(folder)

    build_atomically(out, PARAMS, slow_fill)
    assert is_built(out, PARAMS, ("train", "valid", "test"))
    assert (out / "train.csv").read_text() == "x\nfirst\n"  # not replaced under the reader
    assert [p.name for p in tmp_path.iterdir()] == ["table"]  # no temporary folder left


def test_a_finished_build_is_reused(tmp_path: Path) -> None:
    out = build_atomically(tmp_path / "table", PARAMS, _fill("first"))
    build_atomically(out, PARAMS, _fill("second"))
    assert (out / "train.csv").read_text() == "x\nfirst\n"

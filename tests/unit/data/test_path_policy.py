"""Unit tests of the path policy: table file paths must resolve inside the table's folder."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor

from omnifuse.config.sections import Config, DataConfig
from omnifuse.data.dataset import input_specs, make_example, make_examples
from omnifuse.data.io import check_inside, resolve_path
from omnifuse.data.preprocess.base import Preprocessor
from omnifuse.data.preprocess.image import ImagePreprocessor
from omnifuse.errors import BadValueError

FIX = "move it inside the folder, or set data.allow_outside_paths: true"


class Reader(Preprocessor):
    """A file -> its size; remembers every path it read."""

    def __init__(self) -> None:
        self.read: list[Path] = []

    def __call__(self, value: Any) -> dict[str, Tensor]:
        self.read.append(Path(value))
        return {"size": torch.tensor([float(len(Path(value).read_bytes()))])}

    def blank(self) -> dict[str, Tensor]:  # pragma: no cover - no cell is missing here
        return {"size": torch.tensor([0.0])}


def _config(allow_outside: bool) -> Config:
    return Config.from_dict(
        {
            "label": {"column": "y", "task": "binary"},
            "columns": {"photo": {"type": "image"}},
            "data": {"allow_outside_paths": allow_outside},
        }
    )


@pytest.fixture
def layout(tmp_path: Path) -> Path:
    """tmp/table/ (the table's folder, with in.png and sub/) and tmp/secret.png outside it."""
    table = tmp_path / "table"
    (table / "sub").mkdir(parents=True)
    (table / "in.png").write_bytes(b"inside")
    (tmp_path / "secret.png").write_bytes(b"secret!")
    return table


def _row(cell: str, table: Path, allow_outside: bool) -> tuple[Any, Any, Reader]:
    cfg = _config(allow_outside)
    reader = Reader()
    example, bad = make_example(0, {"photo": cell}, input_specs(cfg), {"photo": reader}, cfg, table)
    return example, bad, reader


def test_default_is_off() -> None:
    assert DataConfig().allow_outside_paths is False
    assert _config(True).data.allow_outside_paths is True


def test_dotdot_escape_refused(layout: Path) -> None:
    example, bad, reader = _row("../secret.png", layout, allow_outside=False)
    assert example is None and not reader.read  # the file outside was never read
    outside = (layout.parent / "secret.png").resolve()
    assert bad.column == "photo" and bad.value == "../secret.png"
    assert (
        bad.reason
        == f"file '../secret.png' resolves to {outside}, outside the table's folder {layout.resolve()}"
    )
    assert bad.fix == FIX


def test_dotdot_that_comes_back_inside_is_fine(layout: Path) -> None:
    example, bad, reader = _row("sub/../in.png", layout, allow_outside=False)
    assert bad is None and example is not None
    assert reader.read == [layout / "sub/../in.png"]


def test_symlink_escape_refused(layout: Path) -> None:
    os.symlink(layout.parent / "secret.png", layout / "link.png")
    os.symlink(layout.parent, layout / "sub" / "up")  # a linked folder, too
    for cell in ("link.png", "sub/up/secret.png"):
        example, bad, reader = _row(cell, layout, allow_outside=False)
        assert example is None and not reader.read
        assert re.fullmatch(
            rf"file '{cell}' resolves to .*secret\.png, outside the table's folder .*table", bad.reason
        )


def test_symlink_inside_allowed(layout: Path) -> None:
    os.symlink(layout / "in.png", layout / "sub" / "alias.png")
    example, bad, reader = _row("sub/alias.png", layout, allow_outside=False)
    assert bad is None and example is not None
    assert float(example.inputs["photo"]["size"]) == len(b"inside")


def test_absolute_paths_inside_allowed_outside_refused(layout: Path) -> None:
    example, bad, _ = _row(str(layout / "in.png"), layout, allow_outside=False)
    assert bad is None and example is not None
    example, bad, reader = _row(str(layout.parent / "secret.png"), layout, allow_outside=False)
    assert example is None and not reader.read and "outside the table's folder" in bad.reason


@pytest.mark.parametrize("make_link", [False, True])
def test_flag_allows_every_escape(layout: Path, make_link: bool) -> None:
    if make_link:
        os.symlink(layout.parent / "secret.png", layout / "link.png")
    for cell in ("../secret.png", str(layout.parent / "secret.png"), *(["link.png"] if make_link else [])):
        example, bad, reader = _row(cell, layout, allow_outside=True)
        assert bad is None and example is not None
        assert float(example.inputs["photo"]["size"]) == len(b"secret!")


def test_explicit_argument_overrides_the_config(layout: Path) -> None:
    cfg = _config(False)
    example, bad = make_example(
        0, {"photo": "../secret.png"}, input_specs(cfg), {"photo": Reader()}, cfg, layout, allow_outside=True
    )
    assert bad is None and example is not None
    cfg = _config(True)
    example, bad = make_example(
        0, {"photo": "../secret.png"}, input_specs(cfg), {"photo": Reader()}, cfg, layout, allow_outside=False
    )
    assert example is None and bad is not None and "outside the table's folder" in bad.reason


def test_make_examples_reports_the_escaping_rows(layout: Path) -> None:
    import pandas as pd

    cfg = _config(False)
    frame = pd.DataFrame({"photo": ["in.png", "../secret.png", "in.png"]})
    examples, bad = make_examples(frame, input_specs(cfg), {"photo": Reader()}, cfg, layout)
    assert [e.index for e in examples] == [0, 2]
    assert [(b.row, b.fix) for b in bad] == [(1, FIX)]


def test_policy_is_checked_before_existence(layout: Path) -> None:
    """A table cannot probe which files exist outside its folder."""
    _, bad, _ = _row("../nowhere.png", layout, allow_outside=False)
    assert bad.reason.startswith("file '../nowhere.png' resolves to ")
    _, bad, _ = _row("../nowhere.png", layout, allow_outside=True)
    assert bad.reason.startswith("file '../nowhere.png' does not exist (looked for ")


def test_directory_cell_is_a_bad_value(layout: Path) -> None:
    cfg = _config(False)
    pre = ImagePreprocessor(size=4, channels=1)
    example, bad = make_example(0, {"photo": "sub"}, input_specs(cfg), {"photo": pre}, cfg, layout)
    assert example is None and bad is not None
    assert bad.reason == f"'{layout / 'sub'}' is a directory, not an image file"
    assert bad.fix == "point the cell at a file"


def test_check_inside_direct(tmp_path: Path) -> None:
    base = tmp_path / "base"
    base.mkdir()
    check_inside(base / "x.png", base, allow_outside=False)  # need not exist
    check_inside(tmp_path / "x.png", base, allow_outside=True)
    given, real = re.escape(str(tmp_path / "x.png")), re.escape(str((tmp_path / "x.png").resolve()))
    with pytest.raises(
        BadValueError,
        match=rf"^file '{given}' resolves to {real}, "
        rf"outside the table's folder {re.escape(str(base.resolve()))}; {re.escape(FIX)}$",
    ):
        check_inside(tmp_path / "x.png", base, allow_outside=False)
    with pytest.raises(BadValueError, match=r"^file '\.\./x\.png' resolves to"):
        check_inside(resolve_path("../x.png", base), base, allow_outside=False, shown="../x.png")
    prefix_sibling = tmp_path / "base2" / "x.png"  # a name that only starts like the base is outside
    with pytest.raises(BadValueError, match=r"outside the table's folder"):
        check_inside(prefix_sibling, base, allow_outside=False)

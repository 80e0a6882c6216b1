"""Queries embedded by a model's tower: which tower, and clear errors for queries the model cannot embed.

The model is a stand-in with the ``Predictor`` surface a query uses (``embedding_columns``, ``config.label
.task``, ``embed(rows, column=...)``), returning fixed vectors, so the tests check the routing exactly.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from omnifuse.errors import BadRowError, BadValueError, DataError, ModelDirError
from omnifuse.retrieval import IndexSource, VectorIndex, load_index

DIM = 8
VECTORS = np.eye(DIM, dtype=np.float32)  # row i points along axis i


class StandIn:
    """Embeds a value to axis ``len(str(value)) % DIM``; a missing file fails like a real preprocessor."""

    def __init__(self, columns: dict[str, str], task: str = "contrastive", dim: int = DIM) -> None:
        self.embedding_columns = columns
        self.config = SimpleNamespace(label=SimpleNamespace(task=task))
        self.dim = dim
        self.calls: list[tuple[str | None, Any]] = []

    def embed(self, rows: Any, base_dir: Path | None = None, *, column: str | None = None) -> np.ndarray:
        assert column is not None
        value = rows[0][column]
        self.calls.append((column, value))
        if isinstance(value, Path) and not value.exists():
            raise BadRowError(0, column, f"file '{value}' does not exist", "fix the path")
        out = np.zeros((1, self.dim), dtype=np.float32)
        out[0, len(str(value)) % self.dim] = 1.0
        return out


def index_with(model: StandIn, column: str = "photo", modality: str = "image") -> VectorIndex:
    built = VectorIndex.build(VECTORS, source=IndexSource("/models/m", column, modality))
    built.model = model
    return built


TOWERS = {"photo": "image", "note": "text", "caption": "text"}


def test_text_query_goes_through_the_first_text_tower() -> None:
    model = StandIn(TOWERS)
    hits = index_with(model).search(text="abc", k=2)
    assert model.calls == [("note", "abc")]
    assert hits.iloc[0]["id"] == 3 and hits.iloc[0]["score"] == pytest.approx(1.0)


def test_query_of_the_index_modality_uses_the_index_column(tmp_path: Path) -> None:
    image = tmp_path / "q.png"
    image.write_bytes(b"x")
    model = StandIn(TOWERS)
    index_with(model).search(image=image, k=1)
    assert model.calls == [("photo", image.resolve())]
    index_with(model).search(image=b"12345", k=1)
    assert model.calls[-1] == ("photo", b"12345")


def test_an_explicit_tower_column_is_used_or_refused() -> None:
    model = StandIn(TOWERS)
    index_with(model).search(text="abc", column="caption")
    assert model.calls == [("caption", "abc")]
    with pytest.raises(DataError, match=r"column 'photo' is not a text tower of the index's model; its"):
        index_with(model).search(text="abc", column="photo")


def test_wrong_modality_for_the_model_names_its_towers() -> None:
    with pytest.raises(DataError, match=r"has no audio tower, so it cannot embed this audio query; "
                                        r"its towers: photo \(image\), note \(text\), caption \(text\); "
                                        r"search with --image / image= or --text / text="):
        index_with(StandIn(TOWERS)).search(audio=b"RIFF")


def test_a_model_without_a_shared_space_only_embeds_the_index_column() -> None:
    model = StandIn(TOWERS, task="multiclass")
    with pytest.raises(DataError, match=r"has no text tower.*its towers: photo \(image\)"):
        index_with(model).search(text="abc")
    index_with(model).search(image=b"1", k=1)
    with pytest.raises(ModelDirError, match=r"no embedding tower for the index column 'sound'"):
        index_with(model, column="sound", modality="audio").search(audio=b"1")


def test_an_unreadable_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.png"
    with pytest.raises(BadValueError, match=r"the image query '.*nope.png': file '.*nope.png' does not "
                                            r"exist; pass a readable image file"):
        index_with(StandIn(TOWERS)).search(image=str(missing))
    with pytest.raises(BadValueError, match=r"the audio query must be a file path or the file's bytes, got"):
        index_with(StandIn(TOWERS)).search(audio=3)  # type: ignore[arg-type]


def test_model_dimension_must_match_the_index() -> None:
    with pytest.raises(DataError, match=r"'note' tower gives 4-dimensional embeddings but the index holds "
                                        r"8-dimensional ones; rebuild the index"):
        index_with(StandIn(TOWERS, dim=4)).search(text="abc")


def test_the_recorded_model_folder_must_still_exist(tmp_path: Path) -> None:
    built = VectorIndex.build(VECTORS, source=IndexSource(str(tmp_path / "gone"), "photo", "image"))
    loaded = load_index(built.save(tmp_path / "idx"))
    assert loaded.source == IndexSource(str(tmp_path / "gone"), "photo", "image")
    with pytest.raises(ModelDirError, match=r"the index's model folder '.*gone' does not exist any more"):
        loaded.search(text="abc")
    model = StandIn(TOWERS)
    assert load_index(tmp_path / "idx", model=model).search(text="abc").iloc[0]["id"] == 3

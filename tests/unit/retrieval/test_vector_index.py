"""VectorIndex on raw vectors: build, search, add, save, load, the auto choice, and its errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from omnifuse.errors import BadValueError, ConfigError, DataError, ModelDirError
from omnifuse.retrieval import IndexOptions, VectorIndex, load_index, results_json


def unit_rows(n: int, dim: int = 16, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def clustered(n: int, dim: int = 32, clusters: int = 20, seed: int = 0) -> np.ndarray:
    """Points around a few centres, like real embeddings (unlike uniform noise, they have neighbours)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim))
    points = centres[rng.integers(0, clusters, n)] + 0.15 * rng.normal(size=(n, dim))  # (n, dim)
    return points.astype(np.float32)


def exact_top(data: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    unit = data / np.linalg.norm(data, axis=1, keepdims=True)
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    return np.argsort(-(q @ unit.T), axis=1)[:, :k]  # (Q, k)


def test_flat_finds_each_vector_itself_first_with_its_metadata() -> None:
    data = unit_rows(50)
    meta = pd.DataFrame({"title": [f"t{i}" for i in range(50)], "size": np.arange(50) * 1.5})
    index = VectorIndex.build(data, ids=[f"r{i}" for i in range(50)], metadata=meta)
    assert index.kind == "flat" and index.count == 50 and index.dim == 16
    for i in (0, 17, 49):
        hits = index.search(vector=data[i] * 3.0, k=5)  # scale does not matter: vectors are normalised
        assert list(hits.columns) == ["rank", "score", "id", "title", "size"]
        assert hits["rank"].tolist() == [1, 2, 3, 4, 5]
        assert hits.loc[0, "id"] == f"r{i}" and hits.loc[0, "title"] == f"t{i}"
        assert hits.loc[0, "score"] == pytest.approx(1.0, abs=1e-5)
        assert hits["score"].is_monotonic_decreasing


def test_k_larger_than_the_index_returns_every_row() -> None:
    index = VectorIndex.build(unit_rows(3))
    hits = index.search(vector=unit_rows(1, seed=5)[0], k=10)
    assert sorted(hits["id"]) == [0, 1, 2]


def test_auto_picks_flat_below_the_threshold_and_ivf_above_and_records_it(tmp_path: Path) -> None:
    small = VectorIndex.build(unit_rows(99), options=IndexOptions(exact_below=100))
    large = VectorIndex.build(clustered(2000), options=IndexOptions(exact_below=100, nprobe=8))
    assert small.kind == "flat" and large.kind == "ivf"
    large.save(tmp_path / "idx")
    info = json.loads((tmp_path / "idx/index.json").read_text())
    assert info["kind"] == "ivf" and info["options"]["kind"] == "auto" and info["count"] == 2000
    assert info["params"] == {"nlist": 51, "nprobe": 8, "train_size": 2000}  # min(4 sqrt(N), N / 39)
    assert info["dim"] == 32 and info["metric"] == "inner_product" and info["model"] is None
    assert {"created", "updated", "omnifuse_version"} <= set(info)


@pytest.mark.parametrize("kind, options", [("ivf", {"nprobe": 4}), ("hnsw", {"ef_search": 32})])
def test_approximate_recall_is_high_on_clustered_data(kind: str, options: dict[str, int]) -> None:
    data = clustered(3000)
    index = VectorIndex.build(data, options=IndexOptions(kind=kind, **options))  # type: ignore[arg-type]
    queries = data[:100] + 0.05 * np.random.default_rng(1).normal(size=(100, 32)).astype(np.float32)
    _, found = index.search_vectors(queries, k=10)
    truth = exact_top(data, queries, 10)
    recall = np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth, strict=True)])
    assert index.kind == kind and recall >= 0.9


def test_save_load_round_trip_keeps_results_and_search_parameters(tmp_path: Path) -> None:
    data = clustered(2000)
    meta = pd.DataFrame({"name": [f"n{i}" for i in range(2000)]})
    index = VectorIndex.build(data, metadata=meta, options=IndexOptions(kind="ivf", nprobe=3))
    before = index.search(vector=data[7], k=4)
    loaded = load_index(index.save(tmp_path / "idx"))
    assert loaded.index.nprobe == 3 and loaded.kind == "ivf" and loaded.count == 2000
    pd.testing.assert_frame_equal(loaded.search(vector=data[7], k=4), before)
    files = sorted(p.name for p in (tmp_path / "idx").iterdir())
    assert files == ["index.faiss", "index.json", "rows.parquet"]


def test_add_continues_ids_and_finds_new_rows_after_reload(tmp_path: Path) -> None:
    index = VectorIndex.build(unit_rows(10), metadata=pd.DataFrame({"src": ["a"] * 10}))
    index.save(tmp_path / "idx")
    reloaded = load_index(tmp_path / "idx")
    extra = unit_rows(5, seed=3)
    reloaded.add(extra, metadata=pd.DataFrame({"src": ["b"] * 5, "new_col": [1, 2, 3, 4, 5]}))
    reloaded.save(tmp_path / "idx")
    again = load_index(tmp_path / "idx")
    assert again.count == 15 and again.rows["id"].tolist() == list(range(15))
    hit = again.search(vector=extra[2], k=1).iloc[0]
    assert hit["id"] == 12 and hit["src"] == "b" and hit["new_col"] == 3
    assert pd.isna(again.search(vector=unit_rows(10)[0], k=1).iloc[0]["new_col"])


def test_auto_index_is_rebuilt_as_approximate_when_it_grows_past_the_threshold() -> None:
    data = clustered(1200)
    index = VectorIndex.build(data[:100], options=IndexOptions(exact_below=1000, nprobe=51))
    assert index.kind == "flat"
    index.add(data[100:])
    assert index.kind == "ivf" and index.count == 1200 and index.params["nlist"] == 30
    assert index.search(vector=data[1100], k=1).iloc[0]["id"] == 1100
    assert index.search(vector=data[5], k=1).iloc[0]["id"] == 5


def test_duplicate_ids_are_refused() -> None:
    index = VectorIndex.build(unit_rows(3), ids=["a", "b", "c"])
    with pytest.raises(DataError, match=r"id\(s\) 'b' are already in the index \(1 in all\)"):
        index.add(unit_rows(2, seed=1), ids=["d", "b"])
    with pytest.raises(DataError, match=r"ids must be unique: 'x' occur more than once in the new rows"):
        index.add(unit_rows(2, seed=1), ids=["x", "x"])
    with pytest.raises(DataError, match=r"the index's ids are text but the new ids are numbers"):
        index.add(unit_rows(1, seed=1), ids=[4])
    assert index.count == 3  # nothing was added by the failed calls


def test_bad_shapes_ids_and_metadata() -> None:
    index = VectorIndex.build(unit_rows(4))
    with pytest.raises(DataError, match=r"vectors have 8 dimensions but the index holds 16-dimensional"):
        index.search(vector=np.ones(8), k=1)
    with pytest.raises(DataError, match=r"vectors have 8 dimensions but the index holds 16-dimensional"):
        index.add(np.ones((2, 8)))
    with pytest.raises(DataError, match=r"got 1 ids for 2 vectors"):
        index.add(unit_rows(2), ids=[9])
    with pytest.raises(DataError, match=r"metadata column\(s\) 'score' clash with the search result columns"):
        VectorIndex.build(unit_rows(2), metadata=pd.DataFrame({"score": [1, 2]}))
    with pytest.raises(DataError, match=r"got 3 metadata rows for 2 vectors"):
        VectorIndex.build(unit_rows(2), metadata=pd.DataFrame({"x": [1, 2, 3]}))
    with pytest.raises(DataError, match=r"vectors contain NaN or infinite values"):
        VectorIndex.build(np.full((2, 3), np.nan))
    with pytest.raises(DataError, match=r"must be a \(rows, dim\) matrix, got shape \(3,\)"):
        VectorIndex.build(np.ones(3))


@pytest.mark.parametrize("k", [0, -1, 2.5, True])
def test_k_must_be_a_positive_whole_number(k: object) -> None:
    index = VectorIndex.build(unit_rows(4))
    with pytest.raises(DataError, match=r"k must be a whole number of at least 1, got"):
        index.search(vector=unit_rows(1)[0], k=k)  # type: ignore[arg-type]


def test_queries_exactly_one_and_not_empty() -> None:
    index = VectorIndex.build(unit_rows(4))
    with pytest.raises(DataError, match=r"pass exactly one query: .* \(got none\)"):
        index.search()
    with pytest.raises(DataError, match=r"pass exactly one query: .* \(got text, vector\)"):
        index.search(text="a", vector=unit_rows(1)[0])
    with pytest.raises(BadValueError, match=r"the text query '  ' is empty; type some words"):
        index.search(text="  ")
    with pytest.raises(DataError, match=r"built from raw vectors, without a model.*search it with vector="):
        index.search(text="red shoes")


def test_bad_options_are_listed_together() -> None:
    with pytest.raises(ConfigError, match=r"kind 'tree' is not one of auto, flat, ivf, hnsw(.|\n)*nprobe"):
        VectorIndex.build(unit_rows(4), options=IndexOptions(kind="tree", nprobe=0))


def test_results_json_is_plain() -> None:
    meta = pd.DataFrame({"title": ["x", None], "n": [np.int64(3), np.int64(4)], "f": [np.nan, 1.0]})
    index = VectorIndex.build(unit_rows(2), ids=["a", "b"], metadata=meta)
    out = results_json(index.search(vector=unit_rows(2)[0], k=2))
    assert out[0] == {"rank": 1, "score": pytest.approx(1.0, abs=1e-5), "id": "a",
                      "metadata": {"title": "x", "n": 3, "f": None}}
    assert out[1]["rank"] == 2 and out[1]["id"] == "b" and json.dumps(out, allow_nan=False)


# -- index folders that cannot be read -------------------------------------------------------------

@pytest.fixture
def saved(tmp_path: Path) -> Path:
    return VectorIndex.build(unit_rows(6)).save(tmp_path / "idx")


def test_missing_folder_and_files(tmp_path: Path, saved: Path) -> None:
    with pytest.raises(ModelDirError, match=r"index folder '.*nowhere' does not exist; give the folder"):
        load_index(tmp_path / "nowhere")
    (saved / "rows.parquet").unlink()
    with pytest.raises(ModelDirError, match=r"lacks rows.parquet; it is not a complete index: rebuild it"):
        load_index(saved)


def test_corrupt_files(saved: Path) -> None:
    good = (saved / "index.faiss").read_bytes()
    (saved / "index.faiss").write_bytes(good[: len(good) // 2])
    with pytest.raises(ModelDirError, match=r"index.faiss is not a readable FAISS index"):
        load_index(saved)
    (saved / "index.faiss").write_bytes(good)
    (saved / "index.json").write_text("{not json")
    with pytest.raises(ModelDirError, match=r"index.json is corrupt \(JSONDecodeError"):
        load_index(saved)


def test_files_that_disagree(saved: Path) -> None:
    info = json.loads((saved / "index.json").read_text())
    (saved / "index.json").write_text(json.dumps(info | {"count": 7}))
    with pytest.raises(ModelDirError, match=r"files disagree \(index.json count 7, index.faiss vectors 6"):
        load_index(saved)
    (saved / "index.json").write_text(json.dumps(info | {"dim": 8}))
    with pytest.raises(ModelDirError, match=r"index.json dim 8 but index.faiss holds 16-dimensional"):
        load_index(saved)


def test_metadata_parquet_cannot_store_is_a_clear_error(tmp_path: Path) -> None:
    from omnifuse.errors import OmnifuseError

    index = VectorIndex.build(unit_rows(2), metadata=pd.DataFrame({"mixed": [1, "a"]}))
    with pytest.raises(OmnifuseError, match=r"cannot write the index's row metadata .*one type"):
        index.save(tmp_path / "idx")
    assert not (tmp_path / "idx/index.json").exists()

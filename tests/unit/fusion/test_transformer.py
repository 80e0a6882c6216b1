"""Unit tests of the transformer (MMBT-style) fusion."""

from __future__ import annotations

import time

import pytest
import torch
from torch import nn

from omnifuse.encoders.base import EncoderOutput
from omnifuse.fusion.transformer import TransformerOptions, build_transformer, token_sequences

DIMS = {"audio": 3, "image": 5, "text": 4}
SMALL = TransformerOptions(dim=8, heads=2, layers=2, dropout=0.0, max_tokens=6)


def _inputs(batch: int, dims: dict[str, int], length: int = 4) -> dict[str, EncoderOutput]:
    feats = {}
    for name, dim in dims.items():
        mask = torch.arange(length)[None, :] < torch.randint(1, length + 1, (batch, 1))  # (B, T)
        feats[name] = EncoderOutput(torch.randn(batch, dim), torch.randn(batch, length, dim), mask)
    return feats


def _all_present(batch: int) -> dict[str, torch.Tensor]:
    return {n: torch.ones(batch, dtype=torch.bool) for n in DIMS}


def test_token_sequences_lead_with_pooled_and_zero_padding_and_absent_rows() -> None:
    pooled, tokens = torch.ones(2, 3), torch.full((2, 5, 3), 7.0)
    mask = torch.tensor([[True, True, False, False, False], [True, True, True, True, True]])
    feats = {"a": EncoderOutput(pooled, tokens, mask), "b": EncoderOutput(2 * pooled)}
    presence = {"a": torch.tensor([True, False]), "b": torch.tensor([True, True])}
    seqs, valid, present = token_sequences(["a", "b"], feats, presence, max_tokens=3)
    assert seqs[0].shape == (2, 4, 3) and seqs[1].shape == (2, 1, 3)  # pooled + 3 kept tokens; pooled only
    torch.testing.assert_close(seqs[0][0, :, 0], torch.tensor([1.0, 7.0, 7.0, 0.0]))
    assert (seqs[0][1] == 0).all()  # absent row: nothing left
    assert valid[0].tolist() == [[True, True, True, False], [False, False, False, False]]
    assert valid[1].tolist() == [[True], [True]]
    assert present.tolist() == [[True, True], [False, True]]


def test_shapes_and_cls_attention_weights() -> None:
    fusion = build_transformer(SMALL, DIMS).eval()
    presence = {
        "audio": torch.tensor([True, True, False, False]),
        "image": torch.tensor([True, False, False, False]),
        "text": torch.tensor([True, True, True, False]),
    }
    out = fusion(_inputs(4, DIMS), presence)
    assert out.shape == (4, 8) and torch.isfinite(out).all()
    weights = fusion.last_weights
    assert weights is not None and weights.shape == (4, 3)
    present = torch.stack([presence[n] for n in sorted(DIMS)], dim=1)  # (B, M)
    assert (weights[~present] == 0).all() and (weights[present] > 0).all()
    assert (weights.sum(1) < 1).all()  # the rest is CLS attending to itself
    assert weights[3].sum() == 0  # nothing present: CLS attends to itself only


def test_padding_with_masked_positions_does_not_change_the_output() -> None:
    fusion = build_transformer(SMALL, DIMS).eval()
    feats = _inputs(3, DIMS)
    padded = {}
    for name, feat in feats.items():
        assert feat.tokens is not None and feat.mask is not None
        extra = 100 * torch.randn(3, 2, DIMS[name])
        tokens = torch.cat([feat.tokens, extra], dim=1)  # (B, T + 2, D)
        mask = torch.cat([feat.mask, torch.zeros(3, 2, dtype=torch.bool)], dim=1)  # (B, T + 2)
        padded[name] = EncoderOutput(feat.pooled, tokens, mask)
    torch.testing.assert_close(fusion(padded, _all_present(3)), fusion(feats, _all_present(3)))


def test_tokens_none_is_the_pooled_vector_alone_and_mask_none_is_all_real() -> None:
    fusion = build_transformer(SMALL, DIMS).eval()
    feats = _inputs(3, DIMS)
    no_tokens = {n: EncoderOutput(f.pooled) for n, f in feats.items()}
    all_masked = {n: EncoderOutput(f.pooled, f.tokens, torch.zeros_like(f.mask)) for n, f in feats.items()}
    torch.testing.assert_close(fusion(no_tokens, _all_present(3)), fusion(all_masked, _all_present(3)))
    no_mask = {n: EncoderOutput(f.pooled, f.tokens) for n, f in feats.items()}
    all_real = {n: EncoderOutput(f.pooled, f.tokens, torch.ones_like(f.mask)) for n, f in feats.items()}
    torch.testing.assert_close(fusion(no_mask, _all_present(3)), fusion(all_real, _all_present(3)))
    assert not torch.allclose(fusion(no_mask, _all_present(3)), fusion(no_tokens, _all_present(3)))


def test_tokens_beyond_max_tokens_are_dropped() -> None:
    fusion = build_transformer(TransformerOptions(dim=8, heads=2, dropout=0.0, max_tokens=2), DIMS).eval()
    feats = {n: EncoderOutput(torch.randn(2, d), torch.randn(2, 5, d)) for n, d in DIMS.items()}
    changed = {}
    for name, feat in feats.items():
        assert feat.tokens is not None
        tokens = feat.tokens.clone()
        tokens[:, 2:] = 100.0
        changed[name] = EncoderOutput(feat.pooled, tokens)
    torch.testing.assert_close(fusion(changed, _all_present(2)), fusion(feats, _all_present(2)))
    tokens = feats["text"].tokens.clone()  # type: ignore[union-attr]
    tokens[:, 1] += 1.0
    changed["text"] = EncoderOutput(feats["text"].pooled, tokens)
    assert not torch.allclose(fusion(changed, _all_present(2)), fusion(feats, _all_present(2)))


def test_cls_only_last_layer_matches_the_full_encoder_layer() -> None:
    fusion = build_transformer(SMALL, DIMS).eval()
    x = torch.randn(3, 6, 8)
    padding = torch.tensor([[False] * 6, [False, False, True, False, True, True], [False] + [True] * 5])
    layer = fusion.layers[-1]
    assert isinstance(layer, nn.TransformerEncoderLayer)
    cls, weights = fusion._last_layer_cls(x, padding)
    torch.testing.assert_close(cls, layer(x, src_key_padding_mask=padding)[:, 0])
    with torch.no_grad():  # the fused fast path of nn.TransformerEncoderLayer
        torch.testing.assert_close(cls, layer(x, src_key_padding_mask=padding)[:, 0])
    torch.testing.assert_close(weights.sum(1), torch.ones(3))
    assert (weights[padding] == 0).all()
    torch.testing.assert_close(weights[2], torch.tensor([1.0, 0, 0, 0, 0, 0]))


def test_absent_nan_tokens_stay_out_of_output_and_gradients() -> None:
    fusion = build_transformer(SMALL, DIMS).train()
    feats = _inputs(3, DIMS)
    presence = {**_all_present(3), "image": torch.tensor([True, False, False])}
    absent = ~presence["image"]
    image = feats["image"]
    assert image.tokens is not None
    feats["image"] = EncoderOutput(
        torch.where(absent[:, None], float("nan"), image.pooled),
        torch.where(absent[:, None, None], float("nan"), image.tokens),
        image.mask,
    )
    out = fusion(feats, presence)
    assert torch.isfinite(out).all()
    out.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in fusion.parameters())


def test_positions_off_has_no_position_parameter() -> None:
    fusion = build_transformer(TransformerOptions(dim=8, heads=2, positions=False), DIMS)
    assert fusion.position_embedding is None
    assert "position_embedding" not in fusion.state_dict()
    assert fusion(_inputs(2, DIMS), _all_present(2)).shape == (2, 8)


def test_forward_time_is_printed() -> None:
    dims = {"audio": 96, "image": 128, "text": 64}
    fusion = build_transformer(TransformerOptions(), dims).eval()
    feats = _inputs(32, dims, length=50)
    presence = {n: torch.ones(32, dtype=torch.bool) for n in dims}
    with torch.no_grad():
        fusion(feats, presence)
        start = time.perf_counter()
        out = fusion(feats, presence)
    elapsed = 1000 * (time.perf_counter() - start)
    print(f"transformer forward, batch 32, 3 inputs x 50 tokens, dim 128, 1 layer: {elapsed:.1f} ms")
    assert out.shape == (32, 128)


def test_bad_options() -> None:
    with pytest.raises(ValueError, match=r"fusion.dim must be a positive integer, got 0"):
        build_transformer(TransformerOptions(dim=0), {"a": 2})
    with pytest.raises(ValueError, match=r"fusion.layers must be a positive integer, got 0"):
        build_transformer(TransformerOptions(layers=0), {"a": 2})
    with pytest.raises(ValueError, match=r"fusion.ff_mult must be a positive integer, got 0"):
        build_transformer(TransformerOptions(ff_mult=0), {"a": 2})
    with pytest.raises(ValueError, match=r"fusion.max_tokens must be a positive integer, got -1"):
        build_transformer(TransformerOptions(max_tokens=-1), {"a": 2})
    with pytest.raises(ValueError, match=r"fusion.heads must be a positive integer, got 0"):
        build_transformer(TransformerOptions(heads=0), {"a": 2})
    with pytest.raises(ValueError, match=r"fusion.dim \(10\) must be divisible by fusion.heads \(4\)"):
        build_transformer(TransformerOptions(dim=10), {"a": 2})
    with pytest.raises(ValueError, match=r"fusion.dropout must be in \[0, 1\), got 1.5"):
        build_transformer(TransformerOptions(dropout=1.5), {"a": 2})
    with pytest.raises(ValueError, match="fusion 'transformer' needs at least one input"):
        build_transformer(TransformerOptions(), {})

"""Unit tests of the cross-attention (co-attention) fusion."""

from __future__ import annotations

import time

import pytest
import torch

from omnifuse.encoders.base import EncoderOutput
from omnifuse.fusion.cross_attention import CrossAttentionFusion, CrossAttentionOptions, build_cross_attention

DIMS = {"audio": 3, "image": 5, "text": 4}
SMALL = CrossAttentionOptions(dim=8, heads=2, layers=2, dropout=0.0, max_tokens=6)


def _inputs(batch: int, dims: dict[str, int], length: int = 4) -> dict[str, EncoderOutput]:
    feats = {}
    for name, dim in dims.items():
        mask = torch.arange(length)[None, :] < torch.randint(1, length + 1, (batch, 1))  # (B, T)
        feats[name] = EncoderOutput(torch.randn(batch, dim), torch.randn(batch, length, dim), mask)
    return feats


def _all_present(batch: int, dims: dict[str, int] = DIMS) -> dict[str, torch.Tensor]:
    return {n: torch.ones(batch, dtype=torch.bool) for n in dims}


def _text_alone(fusion: CrossAttentionFusion) -> CrossAttentionFusion:
    """A single-input fusion holding the 'text' stream's weights of ``fusion`` (no attention: no keys)."""
    alone = build_cross_attention(SMALL, {"text": DIMS["text"]}).eval()
    index = sorted(DIMS).index("text")
    state = {"type_embedding": fusion.type_embedding[index : index + 1]}
    for key, value in fusion.state_dict().items():
        parts = key.split(".")
        if parts[0] == "proj" and parts[1] == str(index):
            state[".".join(["proj", "0", *parts[2:]])] = value
        if parts[0] == "blocks" and parts[2] == str(index) and parts[3] != "attention":
            state[".".join(["blocks", parts[1], "0", *parts[3:]])] = value
    alone.load_state_dict(state)
    return alone


def test_a_row_with_one_present_input_equals_that_input_alone() -> None:
    fusion = build_cross_attention(SMALL, DIMS).eval()
    feats = _inputs(3, DIMS)
    presence = {
        "audio": torch.tensor([False, True, False]),
        "image": torch.tensor([False, True, False]),
        "text": torch.tensor([True, True, False]),
    }
    out = fusion(feats, presence)
    assert torch.isfinite(out).all()
    alone = _text_alone(fusion)(
        {"text": feats["text"]}, {"text": torch.ones(3, dtype=torch.bool)}
    )  # (B, dim)
    torch.testing.assert_close(out[0], alone[0])  # only text present
    assert not torch.allclose(out[1], alone[1])  # all present: text attends to the others
    torch.testing.assert_close(out[2], torch.zeros(8))  # nothing present


def test_inputs_attend_to_each_other() -> None:
    """Changing image's tokens changes what the audio and text streams carry, not just image's share."""
    fusion = build_cross_attention(SMALL, DIMS).eval()
    feats = _inputs(2, DIMS)
    presence = {
        "audio": torch.tensor([True, True]),
        "image": torch.tensor([True, False]),
        "text": torch.ones(2) > 0,
    }
    reference = fusion(feats, presence)
    image = feats["image"]
    assert image.tokens is not None
    feats["image"] = EncoderOutput(image.pooled, image.tokens + 1.0, image.mask)
    changed = fusion(feats, presence)
    assert not torch.allclose(changed[0], reference[0])
    torch.testing.assert_close(changed[1], reference[1])  # image absent in row 1


def test_padding_with_masked_positions_does_not_change_the_output() -> None:
    fusion = build_cross_attention(SMALL, DIMS).eval()
    feats = _inputs(3, DIMS)
    padded = {}
    for name, feat in feats.items():
        assert feat.tokens is not None and feat.mask is not None
        tokens = torch.cat([feat.tokens, 100 * torch.randn(3, 2, DIMS[name])], dim=1)  # (B, T + 2, D)
        mask = torch.cat([feat.mask, torch.zeros(3, 2, dtype=torch.bool)], dim=1)  # (B, T + 2)
        padded[name] = EncoderOutput(feat.pooled, tokens, mask)
    torch.testing.assert_close(fusion(padded, _all_present(3)), fusion(feats, _all_present(3)))


def test_tokens_none_and_mask_none() -> None:
    fusion = build_cross_attention(SMALL, DIMS).eval()
    feats = _inputs(3, DIMS)
    no_tokens = {n: EncoderOutput(f.pooled) for n, f in feats.items()}
    all_masked = {n: EncoderOutput(f.pooled, f.tokens, torch.zeros_like(f.mask)) for n, f in feats.items()}
    torch.testing.assert_close(fusion(no_tokens, _all_present(3)), fusion(all_masked, _all_present(3)))
    no_mask = {n: EncoderOutput(f.pooled, f.tokens) for n, f in feats.items()}
    all_real = {n: EncoderOutput(f.pooled, f.tokens, torch.ones_like(f.mask)) for n, f in feats.items()}
    torch.testing.assert_close(fusion(no_mask, _all_present(3)), fusion(all_real, _all_present(3)))


def test_single_input_has_no_attention_and_trains() -> None:
    fusion = build_cross_attention(SMALL, {"text": 4}).train()
    assert not any("attention" in name for name, _ in fusion.named_parameters())
    feats = _inputs(3, {"text": 4})
    out = fusion(feats, {"text": torch.tensor([True, True, False])})
    assert out.shape == (3, 8) and torch.isfinite(out).all()
    torch.testing.assert_close(out[2], torch.zeros(8))
    (out * torch.randn_like(out)).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in fusion.parameters())


def test_absent_nan_tokens_stay_out_of_output_and_gradients() -> None:
    fusion = build_cross_attention(SMALL, DIMS).train()
    feats = _inputs(3, DIMS)
    presence = {
        "audio": torch.tensor([True, False, False]),
        "image": torch.tensor([False, False, False]),
        "text": torch.tensor([True, True, False]),
    }
    nan_feats = {}
    for name, feat in feats.items():
        assert feat.tokens is not None
        absent = ~presence[name]
        nan_feats[name] = EncoderOutput(
            torch.where(absent[:, None], float("nan"), feat.pooled),
            torch.where(absent[:, None, None], float("nan"), feat.tokens),
            feat.mask,
        )
    out = fusion(nan_feats, presence)
    assert torch.isfinite(out).all()
    out.sum().backward()
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in fusion.parameters())


def test_forward_time_is_printed() -> None:
    dims = {"audio": 96, "image": 128, "text": 64}
    fusion = build_cross_attention(CrossAttentionOptions(), dims).eval()
    feats = _inputs(32, dims, length=50)
    presence = _all_present(32, dims)
    with torch.no_grad():
        fusion(feats, presence)
        start = time.perf_counter()
        out = fusion(feats, presence)
    elapsed = 1000 * (time.perf_counter() - start)
    print(f"cross_attention forward, batch 32, 3 inputs x 50 tokens, dim 128, 1 layer: {elapsed:.1f} ms")
    assert out.shape == (32, 128)


def test_bad_options() -> None:
    with pytest.raises(ValueError, match=r"fusion.dim must be a positive integer, got 0"):
        build_cross_attention(CrossAttentionOptions(dim=0), {"a": 2})
    with pytest.raises(ValueError, match=r"fusion.layers must be a positive integer, got 0"):
        build_cross_attention(CrossAttentionOptions(layers=0), {"a": 2})
    with pytest.raises(ValueError, match=r"fusion.ff_mult must be a positive integer, got 0"):
        build_cross_attention(CrossAttentionOptions(ff_mult=0), {"a": 2})
    with pytest.raises(ValueError, match=r"fusion.max_tokens must be a positive integer, got 0"):
        build_cross_attention(CrossAttentionOptions(max_tokens=0), {"a": 2})
    with pytest.raises(ValueError, match=r"fusion.dim \(6\) must be divisible by fusion.heads \(4\)"):
        build_cross_attention(CrossAttentionOptions(dim=6), {"a": 2})
    with pytest.raises(ValueError, match=r"fusion.dropout must be in \[0, 1\), got -0.5"):
        build_cross_attention(CrossAttentionOptions(dropout=-0.5), {"a": 2})
    with pytest.raises(ValueError, match="fusion 'cross_attention' needs at least one input"):
        build_cross_attention(CrossAttentionOptions(), {})

"""Contract tests run over every registered fusion: shapes, gradients, missing inputs, save/load, order."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import omnifuse.catalog  # noqa: F401  (registers every fusion)
from omnifuse.encoders.base import EncoderOutput
from omnifuse.fusion.base import FUSIONS, Fusion

DIMS = {"audio": 5, "image": 3, "text": 4}
LENGTHS = {"audio": 6, "image": 4, "text": 7}
# Rows: all present, one absent (each), two absent, all absent.
PRESENCE = {
    "audio": [True, False, True, True, False, False],
    "image": [True, True, False, True, False, False],
    "text": [True, True, True, False, True, False],
}
BATCH = len(PRESENCE["audio"])


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def _dims(name: str) -> dict[str, int]:
    """The inputs a fusion is tested with: all of DIMS, or the first ``num_inputs`` of a fixed count."""
    count = FUSIONS.get(name).num_inputs
    return dict(list(DIMS.items())[:count]) if count else dict(DIMS)


def _build(name: str) -> Fusion:
    spec = FUSIONS.get(name)
    return spec.build(spec.options(), _dims(name))


def _features(fusion_name: str, requires_grad: bool = False) -> dict[str, EncoderOutput]:
    """Tokens with ragged masks (at least one real position per row) and pooled vectors per input."""
    feats = {}
    for name, dim in _dims(fusion_name).items():
        length = LENGTHS[name]
        lengths = torch.randint(1, length + 1, (BATCH,))
        mask = torch.arange(length)[None, :] < lengths[:, None]  # (B, T)
        tokens = torch.randn(BATCH, length, dim, requires_grad=requires_grad)
        pooled = torch.randn(BATCH, dim, requires_grad=requires_grad)
        feats[name] = EncoderOutput(pooled, tokens, mask)
    return feats


def _presence(name: str, all_present: bool = False) -> dict[str, torch.Tensor]:
    if all_present:
        return {n: torch.ones(BATCH, dtype=torch.bool) for n in _dims(name)}
    return {n: torch.tensor(PRESENCE[n]) for n in _dims(name)}


def test_some_fusions_are_registered() -> None:
    expected = {"attention", "bilinear", "concat", "cross_attention", "gated", "late", "low_rank_tensor",
                "tensor", "transformer", "weighted_sum"}
    assert expected <= set(FUSIONS.names())


@pytest.mark.parametrize("name", FUSIONS.names())
def test_options_have_defaults_and_summary(name: str) -> None:
    spec = FUSIONS.get(name)
    assert dataclasses.is_dataclass(spec.options)
    spec.options()  # every field has a default
    assert spec.summary.strip()


@pytest.mark.parametrize("name", FUSIONS.names())
def test_shape_and_finite_for_every_presence_pattern(name: str) -> None:
    fusion = _build(name).eval()
    out = fusion(_features(name), _presence(name))
    assert out.shape == (BATCH, fusion.output_dim)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", FUSIONS.names())
def test_backward_reaches_every_parameter(name: str) -> None:
    fusion = _build(name).train()
    feats = _features(name, requires_grad=True)
    out = fusion(feats, _presence(name, all_present=True))
    (out * torch.randn_like(out)).sum().backward()
    for pname, param in fusion.named_parameters():
        assert param.grad is not None, f"{pname} got no gradient"
        assert torch.isfinite(param.grad).all(), f"{pname} has a non-finite gradient"
        assert param.grad.abs().sum() > 0, f"{pname} has an all-zero gradient"
    assert any(f.pooled.grad is not None for f in feats.values())


@pytest.mark.parametrize("name", FUSIONS.names())
def test_backward_is_finite_with_missing_inputs(name: str) -> None:
    fusion = _build(name).train()
    feats = _features(name, requires_grad=True)
    out = fusion(feats, _presence(name))
    assert torch.isfinite(out).all()
    out.sum().backward()
    for pname, param in fusion.named_parameters():
        assert param.grad is None or torch.isfinite(param.grad).all(), f"{pname} has a non-finite gradient"
    for feat in feats.values():
        for tensor in (feat.pooled, feat.tokens):
            assert tensor is not None
            assert tensor.grad is None or torch.isfinite(tensor.grad).all()


@pytest.mark.parametrize("name", FUSIONS.names())
def test_absent_inputs_do_not_influence_the_output(name: str) -> None:
    fusion = _build(name).eval()
    feats, presence = _features(name), _presence(name)
    reference = fusion(feats, presence)
    changed = {}
    for input_name, feat in feats.items():
        absent = ~presence[input_name]
        pooled = torch.where(absent[:, None], 100 * torch.randn_like(feat.pooled), feat.pooled)
        assert feat.tokens is not None
        tokens = torch.where(absent[:, None, None], 100 * torch.randn_like(feat.tokens), feat.tokens)
        changed[input_name] = EncoderOutput(pooled, tokens, feat.mask)
    torch.testing.assert_close(fusion(changed, presence), reference)


@pytest.mark.parametrize("name", FUSIONS.names())
def test_safetensors_round_trip(name: str, tmp_path: Path) -> None:
    fusion = _build(name).eval()
    feats, presence = _features(name), _presence(name)
    save_file(fusion.state_dict(), str(tmp_path / "fusion.safetensors"))
    torch.manual_seed(1)
    fresh = _build(name).eval()
    fresh.load_state_dict(load_file(str(tmp_path / "fusion.safetensors")))
    torch.testing.assert_close(fresh(feats, presence), fusion(feats, presence), rtol=0, atol=0)


@pytest.mark.parametrize("name", FUSIONS.names())
def test_insertion_order_does_not_matter(name: str) -> None:
    fusion = _build(name).eval()
    feats, presence = _features(name), _presence(name)
    reversed_feats = dict(reversed(list(feats.items())))
    reversed_presence = dict(reversed(list(presence.items())))
    spec = FUSIONS.get(name)
    reversed_build = spec.build(spec.options(), dict(reversed(list(_dims(name).items()))))
    reversed_build.load_state_dict(fusion.state_dict())
    reversed_build.eval()
    expected = fusion(feats, presence)
    torch.testing.assert_close(fusion(reversed_feats, reversed_presence), expected, rtol=0, atol=0)
    torch.testing.assert_close(reversed_build(feats, presence), expected, rtol=0, atol=0)

"""The resampler projector: K queries read an input's tokens, padding never changes the prefix."""

from __future__ import annotations

import torch

from omnifuse.encoders.base import EncoderOutput
from omnifuse.generation.projector import PrefixProjection


def test_the_resampler_writes_k_embeddings_per_input_whatever_the_token_count() -> None:
    torch.manual_seed(0)
    projection = PrefixProjection({"audio": 6, "image": 6}, width=8, tokens=3, kind="resampler").eval()
    tokens = torch.randn(2, 5, 6)
    mask = torch.tensor([[True, True, True, False, False], [True] * 5])
    features = {"audio": EncoderOutput(tokens.mean(1), tokens, mask),
                "image": EncoderOutput(torch.randn(2, 6))}  # no tokens: its pooled vector is one token
    presence = {"audio": torch.ones(2, dtype=torch.bool), "image": torch.tensor([True, False])}
    prefix, present = projection.prefix(features, presence)
    assert prefix.shape == (2, 6, 8) and present.tolist() == [[True] * 6, [True] * 3 + [False] * 3]
    padded = tokens.clone()
    padded[0, 3:] = 100.0  # the padding of row 0 changes
    again, _ = projection.prefix({**features, "audio": EncoderOutput(tokens.mean(1), padded, mask)}, presence)
    assert torch.allclose(again, prefix, atol=1e-6)
    empty = EncoderOutput(tokens.mean(1), tokens, torch.zeros(2, 5, dtype=torch.bool))  # an absent input
    assert torch.isfinite(projection.prefix({**features, "audio": empty}, presence)[0]).all()

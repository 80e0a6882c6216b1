"""Frozen-feature cache: cached features give the real encoder's model outputs; originals stay raw."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from omnifuse.config.binding import fusion_options
from omnifuse.config.sections import ComponentConfig
from omnifuse.data.collate import Example, collate
from omnifuse.encoders.base import Encoder, EncoderOutput
from omnifuse.encoders.text import HFTextEncoder, load_hf_model
from omnifuse.fusion.base import FUSIONS
from omnifuse.model import MultimodalModel
from omnifuse.training.feature_cache import (
    PrecomputedEncoder,
    cache_features,
    precomputed_encoders,
    seed_independent,
)

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat"]


@pytest.fixture(scope="module")
def bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import BertConfig, BertModel

    folder = tmp_path_factory.mktemp("bert")
    config = BertConfig(vocab_size=len(VOCAB), hidden_size=16, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=20)
    BertModel(config).save_pretrained(str(folder))
    return folder


def _examples() -> list[Example]:
    """Rows of different lengths, one padded inside its own tensor, one without any real token."""
    rows = [([2, 5, 6, 3], [1, 1, 1, 1]), ([2, 7, 3], [1, 1, 1]), ([2, 8, 9, 3, 0, 0], [1, 1, 1, 1, 0, 0]),
            ([0, 0], [0, 0]), ([2, 6, 6, 6, 6, 3], [1] * 6)]
    return [
        Example(i, {"a": {"input_ids": torch.tensor(ids), "attention_mask": torch.tensor(mask)},
                    "b": {"x": torch.tensor([float(i), 1.0 - i])}},
                {"a": i != 3, "b": True}, torch.tensor(i % 2))
        for i, (ids, mask) in enumerate(rows)
    ]


class Linear(Encoder):
    """A from-scratch encoder: its weights depend on the seed."""

    def __init__(self) -> None:
        super().__init__()
        self.proj, self.output_dim = nn.Linear(2, 16), 16

    def forward(self, inputs: dict[str, Tensor]) -> EncoderOutput:
        return EncoderOutput(pooled=self.proj(inputs["x"]))


def _model(bert: Path, fusion: str) -> MultimodalModel | None:
    entry = FUSIONS.get(fusion)
    try:
        built = entry.build(fusion_options(ComponentConfig(name=fusion)),
                            {"a": 16, "b": 16})
    except ValueError:
        return None
    encoders = {"a": HFTextEncoder(load_hf_model(str(bert), None)), "b": Linear()}
    return MultimodalModel(encoders, built, nn.Linear(built.output_dim, 3)).eval()


@pytest.mark.parametrize("fusion", FUSIONS.names())
def test_cached_features_give_the_real_encoders_outputs(bert: Path, fusion: str) -> None:
    model = _model(bert, fusion)
    if model is None:
        pytest.skip(f"{fusion} cannot fuse two inputs")
    examples = _examples()
    cached = cache_features(model.encoders["a"], examples, "a", batch_size=2, device="cpu")  # type: ignore[arg-type]
    with torch.inference_mode():
        batch = collate(examples)
        expected = model(batch.inputs, batch.presence)
        with precomputed_encoders(model, ["a"]):
            assert isinstance(model.encoders["a"], PrecomputedEncoder)
            got = model(collate(cached).inputs, batch.presence)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_cached_rows_hold_trimmed_features_and_the_originals_stay_raw(bert: Path) -> None:
    encoder = HFTextEncoder(load_hf_model(str(bert), None)).train()
    examples = _examples()
    raw = [dict(ex.inputs) for ex in examples]
    cached = cache_features(encoder, examples, "a", batch_size=3, device="cpu")
    assert encoder.training  # its mode is restored
    assert [c.inputs["a"]["tokens"].shape for c in cached] == [(4, 16), (3, 16), (4, 16), (1, 16), (6, 16)]
    assert cached[2].inputs["a"]["mask"].dtype == torch.bool and bool(cached[2].inputs["a"]["mask"].all())
    assert not bool(cached[3].inputs["a"]["mask"].any())  # the blank row keeps one padding position
    assert cached[0].inputs["a"]["pooled"].shape == (16,)
    for ex, before, new in zip(examples, raw, cached, strict=True):
        assert ex.inputs == before and set(ex.inputs["a"]) == {"input_ids", "attention_mask"}
        assert new.inputs["b"] is ex.inputs["b"] and new.presence == ex.presence and new.index == ex.index


def test_precomputed_encoder_restores_bool_masks_and_follows_the_model_dtype() -> None:
    encoder = PrecomputedEncoder(4)
    mask = torch.tensor([[1, 0, 0]] * 2)
    inputs = {"pooled": torch.ones(2, 4), "tokens": torch.ones(2, 3, 4), "mask": mask}
    out = encoder(inputs)
    assert out.mask is not None and out.mask.dtype == torch.bool and out.pooled is inputs["pooled"]
    assert encoder.to(torch.float64)(inputs).pooled.dtype == torch.float64
    assert encoder({"pooled": torch.ones(1, 4)}).tokens is None
    assert list(encoder.state_dict()) == [] and encoder.output_dim == 4


def test_only_pretrained_weights_are_seed_independent(bert: Path) -> None:
    state = torch.get_rng_state()
    assert seed_independent(lambda: HFTextEncoder(load_hf_model(str(bert), None)))
    assert not seed_independent(Linear)
    assert torch.equal(torch.get_rng_state(), state)


def test_real_encoders_come_back_even_after_an_error(bert: Path) -> None:
    model = _model(bert, "concat")
    assert model is not None
    real = model.encoders["a"]
    with pytest.raises(RuntimeError, match="boom"), precomputed_encoders(model, ["a", "absent"]):
        assert isinstance(model.encoders["a"], PrecomputedEncoder) and "absent" not in model.encoders
        raise RuntimeError("boom")
    assert model.encoders["a"] is real and isinstance(model.encoders["b"], Linear)

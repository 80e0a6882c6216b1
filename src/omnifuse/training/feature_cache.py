"""Features of frozen encoders computed once and reused by every model trained on the same rows.

A frozen encoder (``freeze_epochs: -1``) runs in eval mode without gradients, so its output is a fixed
function of its weights and its input. When those weights do not depend on the seed (pretrained
encoders: ``seed_independent`` checks it by building twice), ``cache_features`` runs it once over the
rows and stores per-row outputs in place of the raw input; during training the model's encoder is swapped
for a ``PrecomputedEncoder`` that returns them (``precomputed_encoders``). Evaluation that changes the raw
inputs (robustness) must swap the real encoder back first.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import Tensor

from omnifuse.data.bucketing import longest_first
from omnifuse.data.collate import Example, collate
from omnifuse.encoders.base import Encoder, EncoderOutput
from omnifuse.layers.modes import evaluating
from omnifuse.model import MultimodalModel
from omnifuse.training.disk_cache import FeatureStore, inputs_fingerprint

POOLED, TOKENS, MASK = "pooled", "tokens", "mask"  # tensor names of a cached input


class PrecomputedEncoder(Encoder):
    """Returns features that ``cache_features`` stored in place of the raw input.

    Args:
        output_dim: width of the pooled features (the real encoder's ``output_dim``).

    Inputs:
        pooled: (B, D); tokens: (B, T, D), optional; mask: (B, T), optional (zero-padded by collate).

    Returns:
        pooled, tokens and mask (bool) as stored, cast to the dtype the model was converted to.
    """

    probe: Tensor

    def __init__(self, output_dim: int) -> None:
        super().__init__()
        self.output_dim = output_dim
        # Moved and cast with the model (e.g. by Fabric), so the features follow its device and dtype.
        self.register_buffer("probe", torch.zeros(0), persistent=False)

    def forward(self, inputs: dict[str, Tensor]) -> EncoderOutput:
        dtype = self.probe.dtype
        tokens, mask = inputs.get(TOKENS), inputs.get(MASK)
        return EncoderOutput(
            pooled=inputs[POOLED].to(dtype),  # (B, D)
            tokens=None if tokens is None else tokens.to(dtype),  # (B, T, D)
            mask=None if mask is None else mask.bool(),  # (B, T)
        )


def _row_features(output: EncoderOutput, row: int) -> dict[str, Tensor]:
    """The features of one row, its tokens trimmed to its real length (at least one position)."""
    features = {POOLED: output.pooled[row].cpu()}  # (D,)
    if output.tokens is not None:
        tokens = output.tokens[row]  # (T, D)
        mask = None if output.mask is None else output.mask[row].bool()  # (T,)
        if mask is not None:
            length = max(int(mask.nonzero().max()) + 1 if mask.any() else 0, 1)
            tokens, mask = tokens[:length], mask[:length]  # (T_i, D), (T_i,)
            features[MASK] = mask.cpu()
        features[TOKENS] = tokens.cpu()
    return features


@torch.inference_mode()
def cache_features(
    encoder: Encoder,
    examples: list[Example],
    name: str,
    batch_size: int,
    device: torch.device | str,
    store: FeatureStore | None = None,
) -> list[Example]:
    """New examples whose input ``name`` holds the frozen ``encoder``'s features instead of the raw tensors.

    Args:
        encoder: the frozen encoder of input ``name``; run in eval mode (its mode is restored).
        examples: preprocessed rows; they are not changed (robustness still needs the raw inputs).
        name: the input to replace.
        batch_size: rows per encoder pass.
        device: where the encoder runs; the stored features are on the CPU.
        store: the encoder's disk cache: rows found there are not computed, computed rows are written.

    Returns:
        Copies of ``examples`` with ``inputs[name]`` = {"pooled": (D,), "tokens": (T_i, D), "mask": (T_i,)}
        ("tokens"/"mask" only when the encoder returns them); other fields are shared with the originals.
    """
    keys = [inputs_fingerprint(ex.inputs[name]) for ex in examples] if store is not None else []
    features: list[dict[str, Tensor] | None] = (
        [store.load(k) for k in keys] if store is not None else [None] * len(examples)
    )
    todo = [i for i, found in enumerate(features) if found is None]
    order = longest_first([examples[i] for i in todo], [name])  # batches of similar length pad little
    todo = todo if order is None else [todo[i] for i in order]
    with evaluating(encoder.to(device)):
        for start in range(0, len(todo), batch_size):
            rows = todo[start : start + batch_size]
            inputs = collate([examples[i] for i in rows]).inputs[name]
            output = encoder({k: v.to(device) for k, v in inputs.items()})
            for position, i in enumerate(rows):
                features[i] = _row_features(output, position)
                if store is not None:
                    store.save(keys[i], features[i])  # type: ignore[arg-type]
    done = [found for found in features if found is not None]
    assert len(done) == len(examples), "every row has its features"
    pairs = zip(examples, done, strict=True)
    return [dataclasses.replace(ex, inputs={**ex.inputs, name: row}) for ex, row in pairs]


def seed_independent(build: Callable[[], Encoder]) -> bool:
    """Whether ``build`` gives the same weights under two different torch seeds (e.g. pretrained weights).

    The global random state is left as it was.
    """
    states = []
    for seed in (0, 1):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            states.append(build().state_dict())
    first, second = states
    return first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)


@contextmanager
def precomputed_encoders(model: MultimodalModel, names: list[str]) -> Iterator[None]:
    """Swaps the encoders of ``names`` (those the model has) for PrecomputedEncoders, and back on exit.

    On exit the real encoders are moved to the device and dtype the model was moved to meanwhile.
    """
    real: dict[str, Encoder] = {n: model.encoders[n] for n in names if n in model.encoders}  # type: ignore[misc]
    stand_ins = {n: PrecomputedEncoder(encoder.output_dim) for n, encoder in real.items()}
    for n, stand_in in stand_ins.items():
        model.encoders[n] = stand_in
    try:
        yield
    finally:
        for n, encoder in real.items():
            probe = stand_ins[n].probe
            model.encoders[n] = encoder.to(device=probe.device, dtype=probe.dtype)

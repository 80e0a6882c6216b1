"""Batching: stack per-row tensors, padding variable-length ones along dim 0 with zeros."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence


@dataclass
class Example:
    """One preprocessed row.

    Attributes:
        index: the row's position in its table.
        inputs: {input name: {tensor name: Tensor}} as made by the preprocessors.
        presence: {input name: False where the cell was missing}.
        target: the encoded label, or None when predicting.
    """

    index: int
    inputs: dict[str, dict[str, Tensor]]
    presence: dict[str, bool]
    target: Tensor | None = None


@dataclass
class Batch:
    """A collated batch: inputs {name: {tensor: (B, ...)}}, presence {name: (B,) bool}, target, index (B,)."""

    inputs: dict[str, dict[str, Tensor]]
    presence: dict[str, Tensor]
    target: Tensor | None
    index: Tensor

    def to(self, device: torch.device | str) -> Batch:
        """A copy on ``device``."""
        return Batch(
            inputs={n: {k: v.to(device) for k, v in t.items()} for n, t in self.inputs.items()},
            presence={n: p.to(device) for n, p in self.presence.items()},
            target=None if self.target is None else self.target.to(device),
            index=self.index,
        )


def stack_padded(tensors: list[Tensor]) -> Tensor:
    """Stacks (T_i, ...) tensors into (B, T_max, ...), zero-padding dim 0; equal shapes just stack."""
    first = tensors[0].shape
    if all(t.shape == first for t in tensors):
        return torch.stack(tensors)
    return pad_sequence(tensors, batch_first=True, padding_value=0)


def collate(examples: list[Example]) -> Batch:
    """Collates examples into a Batch (the DataLoader's ``collate_fn``)."""
    names = list(examples[0].inputs)
    inputs = {
        name: {
            key: stack_padded([ex.inputs[name][key] for ex in examples]) for key in examples[0].inputs[name]
        }
        for name in names
    }
    presence = {
        name: torch.tensor([ex.presence[name] for ex in examples], dtype=torch.bool) for name in names
    }
    targets = [ex.target for ex in examples]
    target = None if targets[0] is None else torch.stack([t for t in targets if t is not None])
    index = torch.tensor([ex.index for ex in examples], dtype=torch.long)
    return Batch(inputs=inputs, presence=presence, target=target, index=index)


def batches(examples: Sequence[Example], size: int) -> Iterator[Batch]:
    """The examples collated ``size`` at a time, in order (the last batch may be smaller)."""
    for start in range(0, len(examples), size):
        yield collate(list(examples[start : start + size]))

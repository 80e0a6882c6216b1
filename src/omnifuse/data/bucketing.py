"""Length-grouped batching: rows of similar length in the same batch, so that padding costs little.

A batch of texts (or audio clips) is padded to its longest row; random batches of rows whose lengths
vary widely spend most of a transformer's work on padding. As Hugging Face's ``group_by_length`` does,
the shuffled rows are cut into chunks of ``CHUNK_BATCHES`` batches, each chunk is sorted by length and
cut into batches, and the batches are shuffled: every batch is nearly padding-free, the rows of a batch
still change from epoch to epoch, and batches of short and long rows alternate at random.

A row's length is the sum, over its variable-length tensors (those whose first dimension differs
between rows, e.g. ``input_ids`` or log-mel frames), of that dimension divided by the tensor's mean
length, so that a text column and an audio column weigh alike.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import torch
from torch import Tensor

from omnifuse.data.collate import Example

CHUNK_BATCHES = 50  # batches sorted together: larger chunks pad less, smaller ones mix lengths more


def variable_lengths(examples: Sequence[Example], inputs: Collection[str] | None = None) -> dict[str, Tensor]:
    """``"input.tensor"`` -> (N,) first-dimension sizes, for every tensor whose size varies across rows
    (one per input when several share the same sizes, e.g. ``input_ids`` and ``attention_mask``), of the
    given ``inputs`` (default: all)."""
    if not examples:
        return {}
    out: dict[str, Tensor] = {}
    for name, tensors in examples[0].inputs.items():
        if inputs is not None and name not in inputs:
            continue
        seen: list[Tensor] = []
        for key, first in tensors.items():
            if first.dim() == 0:
                continue
            sizes = torch.tensor([ex.inputs[name][key].shape[0] for ex in examples])
            if bool((sizes != sizes[0]).any()) and not any(torch.equal(sizes, s) for s in seen):
                out[f"{name}.{key}"] = sizes
                seen.append(sizes)
    return out


def row_lengths(examples: Sequence[Example], inputs: Collection[str] | None = None) -> Tensor | None:
    """(N,) float: each row's length, summed over variable-length tensors (of ``inputs``, default all)
    relative to their means; None when every row has the same shapes (nothing to group)."""
    return lengths_of(variable_lengths(examples, inputs))


def lengths_of(sizes: dict[str, Tensor]) -> Tensor | None:
    """``row_lengths`` from ``variable_lengths``' sizes (None when there are none)."""
    if not sizes:
        return None
    return torch.stack([s.float() / s.float().mean().clamp_min(1.0) for s in sizes.values()]).sum(0)


def longest_first(examples: Sequence[Example], inputs: Collection[str] | None = None) -> list[int] | None:
    """Row positions ordered by length, longest first (ties in table order), so that inference batches
    pad little; None when no tensor (of ``inputs``, default all) varies in length."""
    lengths = row_lengths(examples, inputs)
    if lengths is None:
        return None
    return torch.argsort(lengths, descending=True, stable=True).tolist()


def grouped_batches(order: Tensor, lengths: Tensor, sizes: Sequence[int],
                    generator: torch.Generator) -> list[Tensor]:
    """The rows of ``order`` cut into batches of ``sizes`` with similar lengths together.

    Args:
        order: (N,) a permutation of row numbers (already shuffled for training).
        lengths: (rows,) each row's length (``row_lengths``).
        sizes: the batch sizes in order; every batch but the last has ``sizes[0]`` rows. Batches
            keep these sizes and the last one stays last (the DDP loss scale reads them by step).
        generator: shuffles the order of the batches.

    Returns:
        One (B_i,) tensor of row numbers per batch, of sizes ``sizes``.
    """
    if not sizes:
        return []
    chunk = sizes[0] * CHUNK_BATCHES
    parts = []
    for start in range(0, sum(sizes), chunk):
        rows = order[start : start + chunk]
        parts.append(rows[torch.argsort(lengths[rows], descending=True, stable=True)])
    ranked = torch.cat(parts)
    batches = list(torch.split(ranked, list(sizes)))
    full = len(batches) if sizes[-1] == sizes[0] else len(batches) - 1
    shuffled = [batches[i] for i in torch.randperm(full, generator=generator).tolist()]
    return shuffled + batches[full:]


def padding_ratio(sizes: dict[str, Tensor], batches: Sequence[Tensor]) -> dict[str, float]:
    """``"input.tensor"`` -> padded / real positions over ``batches`` (1.0: no padding at all)."""
    out = {}
    for key, size in sizes.items():
        padded = sum(int(size[rows].max()) * len(rows) for rows in batches if len(rows))
        real = sum(int(size[rows].sum()) for rows in batches)
        out[key] = padded / max(real, 1)
    return out

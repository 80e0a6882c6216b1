"""Length-grouped batching: row lengths, grouped batches, the padding ratio, and the training sampler."""

from __future__ import annotations

import torch

from omnifuse.data.bucketing import (
    CHUNK_BATCHES,
    grouped_batches,
    padding_ratio,
    row_lengths,
    variable_lengths,
)
from omnifuse.data.collate import Example
from omnifuse.training.distributed import GlobalBatchSampler


def _texts(lengths: list[int]) -> list[Example]:
    return [Example(i, {"t": {"input_ids": torch.ones(n, dtype=torch.long), "fixed": torch.zeros(3)}},
                    {"t": True}, torch.tensor(0)) for i, n in enumerate(lengths)]


def _random_lengths(n: int, seed: int = 0) -> list[int]:
    return torch.randint(1, 120, (n,), generator=torch.Generator().manual_seed(seed)).tolist()


def test_only_tensors_whose_length_varies_count() -> None:
    examples = _texts([3, 5, 3])
    assert list(variable_lengths(examples)) == ["t.input_ids"]
    assert variable_lengths(examples)["t.input_ids"].tolist() == [3, 5, 3]
    assert row_lengths(_texts([4, 4, 4])) is None  # nothing to group


def test_two_variable_inputs_weigh_alike_relative_to_their_means() -> None:
    examples = [Example(0, {"a": {"x": torch.ones(10)}, "b": {"y": torch.ones(1000)}}, {}, None),
                Example(1, {"a": {"x": torch.ones(30)}, "b": {"y": torch.ones(3000)}}, {}, None)]
    lengths = row_lengths(examples)
    assert lengths is not None
    assert torch.allclose(lengths, torch.tensor([0.5 + 0.5, 1.5 + 1.5]))


def test_grouped_batches_keep_every_row_once_with_the_given_sizes() -> None:
    n, batch = 1000, 16
    lengths = torch.tensor(_random_lengths(n)).float()
    sizes = [batch] * (n // batch) + [n % batch]
    order = torch.randperm(n, generator=torch.Generator().manual_seed(1))
    batches = grouped_batches(order, lengths, sizes, torch.Generator().manual_seed(2))
    assert [len(b) for b in batches] == sizes  # the short batch stays last
    assert sorted(torch.cat(batches).tolist()) == list(range(n))


def test_grouping_cuts_padding_and_still_mixes_batches() -> None:
    n, batch = 3200, 32
    raw = _random_lengths(n)
    sizes = {"t.input_ids": torch.tensor(raw)}
    lengths = row_lengths(_texts(raw))
    assert lengths is not None
    sampler = GlobalBatchSampler(n, batch, 0, 1, shuffle=True, seed=0, lengths=lengths)
    grouped = padding_ratio(sizes, sampler.global_batches())["t.input_ids"]
    random = padding_ratio(sizes, sampler.global_batches(grouped=False))["t.input_ids"]
    assert random > 1.5 and grouped < 1.1  # random batches pad to about 2x here
    longest = [int(sizes["t.input_ids"][b].max()) for b in sampler.global_batches()]
    assert longest != sorted(longest, reverse=True)  # batches of long and short rows alternate at random
    epoch0 = [b.tolist() for b in sampler.global_batches()]
    sampler.set_epoch(1)
    assert [b.tolist() for b in sampler.global_batches()] != epoch0  # new batches every epoch


def test_the_grouped_order_is_reproducible_with_the_seed() -> None:
    lengths = torch.tensor(_random_lengths(500)).float()
    a, b = (list(GlobalBatchSampler(500, 8, 0, 1, True, 4, lengths)) for _ in range(2))
    assert a == b
    assert a != list(GlobalBatchSampler(500, 8, 0, 1, True, 5, lengths))


def test_ranks_split_grouped_global_batches_like_one_process() -> None:
    lengths = torch.tensor(_random_lengths(300)).float()
    single = list(GlobalBatchSampler(300, 16, 0, 1, True, 3, lengths))
    ranks = [list(GlobalBatchSampler(300, 8, r, 2, True, 3, lengths)) for r in range(2)]
    assert all(r0 + r1 == whole for r0, r1, whole in zip(ranks[0], ranks[1], single, strict=True))


def test_sorting_stays_within_chunks_of_batches() -> None:
    n, batch = 4 * CHUNK_BATCHES * 4, 4  # four chunks
    lengths = torch.arange(n).float()  # row i has length i
    order = torch.arange(n)  # no shuffling: each chunk holds a contiguous range of lengths
    batches = grouped_batches(order, lengths, [batch] * (n // batch), torch.Generator().manual_seed(0))
    chunk = batch * CHUNK_BATCHES
    assert all(len({int(i) // chunk for i in b}) == 1 for b in batches)  # no batch spans two chunks

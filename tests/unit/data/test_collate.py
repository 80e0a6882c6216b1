"""Unit tests of batching: padding, stacking, presence, index and Batch.to."""

from __future__ import annotations

import torch

from omnifuse.data.collate import Batch, Example, collate, stack_padded


def test_stack_equal_shapes() -> None:
    a, b = torch.tensor([[1.0, 2.0]]), torch.tensor([[3.0, 4.0]])
    out = stack_padded([a, b])
    assert out.shape == (2, 1, 2)
    torch.testing.assert_close(out, torch.tensor([[[1.0, 2.0]], [[3.0, 4.0]]]))


def test_pad_variable_length_along_dim0() -> None:
    out = stack_padded([torch.tensor([1, 2, 3]), torch.tensor([4]), torch.tensor([5, 6])])
    expected = torch.tensor([[1, 2, 3], [4, 0, 0], [5, 6, 0]])
    assert torch.equal(out, expected)
    assert out.dtype == torch.long


def test_pad_keeps_trailing_dims() -> None:
    a = torch.ones(2, 3)  # (T=2, D=3)
    b = torch.full((4, 3), 2.0)  # (T=4, D=3)
    out = stack_padded([a, b])
    assert out.shape == (2, 4, 3)  # (B, T_max, D)
    assert torch.equal(out[0, :2], a) and torch.equal(out[0, 2:], torch.zeros(2, 3))
    assert torch.equal(out[1], b)


def test_pad_with_an_empty_sequence() -> None:
    out = stack_padded([torch.zeros(0, dtype=torch.long), torch.tensor([7, 8])])
    assert torch.equal(out, torch.tensor([[0, 0], [7, 8]]))


def test_scalars_stack() -> None:
    assert torch.equal(stack_padded([torch.tensor(1), torch.tensor(2)]), torch.tensor([1, 2]))


def _examples(with_target: bool = True) -> list[Example]:
    def ex(index: int, ids: list[int], present: bool, target: int) -> Example:
        return Example(
            index=index,
            inputs={
                "text": {
                    "input_ids": torch.tensor(ids),
                    "attention_mask": torch.ones(len(ids), dtype=torch.bool),
                },
                "tabular": {"x": torch.tensor([float(index), 1.0])},
            },
            presence={"text": present, "tabular": True},
            target=torch.tensor(target) if with_target else None,
        )

    return [ex(7, [1, 2], True, 0), ex(3, [5, 6, 7], False, 2), ex(11, [9], True, 1)]


def test_collate_builds_batch() -> None:
    batch = collate(_examples())
    assert list(batch.inputs) == ["text", "tabular"]
    assert torch.equal(batch.inputs["text"]["input_ids"], torch.tensor([[1, 2, 0], [5, 6, 7], [9, 0, 0]]))
    assert torch.equal(
        batch.inputs["text"]["attention_mask"],
        torch.tensor([[True, True, False], [True, True, True], [True, False, False]]),
    )
    assert torch.equal(batch.inputs["tabular"]["x"], torch.tensor([[7.0, 1.0], [3.0, 1.0], [11.0, 1.0]]))
    assert batch.presence["text"].dtype == torch.bool
    assert torch.equal(batch.presence["text"], torch.tensor([True, False, True]))
    assert torch.equal(batch.presence["tabular"], torch.tensor([True, True, True]))
    assert batch.target is not None and torch.equal(batch.target, torch.tensor([0, 2, 1]))
    assert batch.index.dtype == torch.long
    assert torch.equal(batch.index, torch.tensor([7, 3, 11]))


def test_collate_without_targets() -> None:
    batch = collate(_examples(with_target=False))
    assert batch.target is None


def test_batch_to_copies_every_tensor() -> None:
    batch = collate(_examples())
    moved = batch.to("meta")
    assert moved is not batch
    assert moved.inputs["text"]["input_ids"].device.type == "meta"
    assert moved.presence["text"].device.type == "meta"
    assert moved.target is not None and moved.target.device.type == "meta"
    assert moved.index is batch.index  # row indices stay on the CPU for bookkeeping
    assert batch.inputs["text"]["input_ids"].device.type == "cpu"  # the original is untouched


def test_batch_to_without_target() -> None:
    batch = Batch(
        inputs={"a": {"x": torch.zeros(2)}},
        presence={"a": torch.ones(2, dtype=torch.bool)},
        target=None,
        index=torch.tensor([0, 1]),
    )
    assert batch.to("cpu").target is None

"""Image transforms on uint8 pixel batches: shapes, ranges, the identity settings, seeding."""

from __future__ import annotations

import math

import pytest
import torch

from omnifuse.augment.image import (
    AffineOptions,
    EraseOptions,
    FlipOptions,
    _affine,
    _erase,
    _flip,
    affine_theta,
)


def _pixels(b: int = 4, c: int = 1, side: int = 16) -> torch.Tensor:
    gen = torch.Generator().manual_seed(1)
    return torch.randint(0, 256, (b, c, side, side), generator=gen, dtype=torch.uint8)


def test_affine_keeps_shape_and_dtype_and_moves_pixels() -> None:
    pixels = _pixels()
    out = _affine(AffineOptions())({"pixels": pixels}, torch.Generator().manual_seed(0))["pixels"]
    assert out.shape == pixels.shape and out.dtype == torch.uint8
    assert (out != pixels).float().mean() > 0.5


def test_affine_with_no_range_is_the_identity() -> None:
    pixels = _pixels()
    options = AffineOptions(degrees=0.0, translate=0.0, scale=0.0)
    out = _affine(options)({"pixels": pixels}, torch.Generator().manual_seed(0))["pixels"]
    assert torch.equal(out, pixels)


def test_affine_p_zero_leaves_every_row() -> None:
    pixels = _pixels()
    out = _affine(AffineOptions(p=0.0))({"pixels": pixels}, torch.Generator().manual_seed(0))["pixels"]
    assert torch.equal(out, pixels)


def test_affine_theta_rotates_a_quarter_turn() -> None:
    theta = affine_theta(torch.tensor([math.pi / 2]), torch.tensor([1.0]), torch.zeros(1), torch.zeros(1))
    expected = torch.tensor([[[0.0, -1.0, 0.0], [1.0, 0.0, 0.0]]])
    assert torch.allclose(theta, expected, atol=1e-6)


def test_affine_shift_moves_a_dot_by_the_expected_pixels() -> None:
    pixels = torch.zeros(1, 1, 8, 8, dtype=torch.uint8)
    pixels[0, 0, 4, 4] = 255
    # translate drawn from [-0.25 * 2, 0.25 * 2] grid units: force +0.25 of the side with a fixed range
    options = AffineOptions(degrees=0.0, translate=0.25, scale=0.0)
    gen = torch.Generator().manual_seed(0)
    out = _affine(options)({"pixels": pixels}, gen)["pixels"][0, 0]
    gen = torch.Generator().manual_seed(0)
    torch.rand(1, generator=gen), torch.rand(1, generator=gen)  # angle, zoom
    sx = float(torch.rand(1, generator=gen) * 1.0 - 0.5)  # grid units in [-0.5, 0.5]
    sy = float(torch.rand(1, generator=gen) * 1.0 - 0.5)
    row, col = divmod(int(out.argmax()), 8)
    # the output at x reads the input at x + shift: content moves by -shift * side / 2 pixels
    assert abs(col - (4 - sx * 4)) <= 1 and abs(row - (4 - sy * 4)) <= 1


def test_erase_blanks_one_rectangle_of_the_requested_area() -> None:
    pixels = torch.full((8, 1, 20, 20), 200, dtype=torch.uint8)
    options = EraseOptions(p=1.0, min_area=0.1, max_area=0.1, value=0.0)
    out = _erase(options)({"pixels": pixels}, torch.Generator().manual_seed(0))["pixels"]
    erased = (out == 0).float().mean(dim=(1, 2, 3))  # (B,)
    assert torch.all(erased > 0.04) and torch.all(erased < 0.2)
    assert set(out.unique().tolist()) == {0, 200}


def test_erase_p_zero_changes_nothing() -> None:
    pixels = _pixels()
    out = _erase(EraseOptions(p=0.0))({"pixels": pixels}, torch.Generator().manual_seed(0))["pixels"]
    assert torch.equal(out, pixels)


def test_flip_always_mirrors_left_right() -> None:
    pixels = _pixels()
    out = _flip(FlipOptions(horizontal=1.0))({"pixels": pixels}, torch.Generator())["pixels"]
    assert torch.equal(out, pixels.flip(3))


@pytest.mark.parametrize("make", [lambda: _affine(AffineOptions()), lambda: _erase(EraseOptions(p=0.5))])
def test_same_seed_same_result_other_seed_other_result(make: object) -> None:
    transform = make()  # type: ignore[operator]
    pixels = _pixels(b=8)
    first = transform({"pixels": pixels}, torch.Generator().manual_seed(3))["pixels"]
    again = transform({"pixels": pixels}, torch.Generator().manual_seed(3))["pixels"]
    other = transform({"pixels": pixels}, torch.Generator().manual_seed(4))["pixels"]
    assert torch.equal(first, again)
    assert not torch.equal(first, other)

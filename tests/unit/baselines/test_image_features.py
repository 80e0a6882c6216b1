"""Image baseline features: downscaled pixels and a numpy HOG, decoded by omnifuse's image decoder."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from omnifuse.baselines.features.image import HOG_BINS, hog, image_features, load_gray, squash
from omnifuse.errors import BadValueError


def _edge(vertical: bool, side: int = 32) -> np.ndarray:
    """A dark half and a bright half: a vertical edge (brightness changes along x) or a horizontal one."""
    image = np.zeros((side, side))
    if vertical:
        image[:, side // 2 :] = 1.0
    else:
        image[side // 2 :, :] = 1.0
    return image


def _orientation_energy(descriptor: np.ndarray) -> np.ndarray:
    """(bins,) sum of the descriptor per orientation bin (the descriptor's last axis is the bin)."""
    return descriptor.reshape(-1, HOG_BINS, 4).sum(axis=(0, 2))


def test_hog_puts_a_vertical_edge_in_bin_0_and_a_horizontal_one_in_the_90_degree_bin() -> None:
    vertical, horizontal = hog(_edge(vertical=True)), hog(_edge(vertical=False))
    assert vertical.shape == horizontal.shape == (3 * 3 * 2 * 2 * HOG_BINS,)
    v, h = _orientation_energy(vertical), _orientation_energy(horizontal)
    assert v.argmax() == 0 and np.count_nonzero(v) == 1  # gradients along x: 0 degrees
    assert h.argmax() == 4 and np.count_nonzero(h) == 1  # along y: 90 degrees, the 80-100 bin


def test_hog_of_a_flat_image_is_zero_and_a_tiny_image_is_refused() -> None:
    assert not hog(np.full((32, 32), 0.5)).any()
    with pytest.raises(ValueError, match=r"smaller than a HOG block of 16 pixels"):
        hog(np.zeros((10, 10)))


def test_image_features_from_a_path_and_from_bytes_agree(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 255, size=(40, 30, 3)).astype(np.uint8)
    Image.fromarray(pixels).save(tmp_path / "a.png")
    from_path = image_features(tmp_path / "a.png")
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    assert from_path.shape == (16 * 16 + 324,) and from_path.dtype == np.float32
    np.testing.assert_array_equal(from_path, image_features(buffer.getvalue()))
    assert 0.0 <= from_path[:256].min() and from_path[:256].max() <= 1.0  # pixels on the [0, 1] scale


def test_squash_gives_grayscale_pixels_of_the_asked_side(tmp_path: Path) -> None:
    Image.new("RGB", (50, 20), (255, 255, 255)).save(tmp_path / "white.png")
    pixels = squash(load_gray(tmp_path / "white.png"), 8)
    assert pixels.shape == (8, 8) and np.allclose(pixels, 1.0)


def test_an_undecodable_file_raises_the_decoders_error(tmp_path: Path) -> None:
    (tmp_path / "bad.png").write_bytes(b"not an image at all")
    with pytest.raises(BadValueError, match=r"cannot decode .*bad.png"):
        image_features(tmp_path / "bad.png")

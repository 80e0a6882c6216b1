"""Image features: downscaled grayscale pixels and a histogram of oriented gradients (HOG), in numpy.

The file is decoded by omnifuse's own image decoder (``data.preprocess.image``), so the formats, the
EXIF orientation, the alpha compositing and the decompression-bomb guard are those the model sees.
HOG follows Dalal & Triggs (https://lear.inrialpes.fr/people/triggs/pubs/Dalal-cvpr05.pdf): central-
difference gradients, unsigned orientations in ``bins`` equal sectors of 0..180 degrees, magnitude-weighted
histograms per ``cell x cell`` block of pixels, L2-Hys normalisation over 2x2 cells with a stride of one cell.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from omnifuse.data.preprocess.image import DEFAULT_MAX_PIXELS, decode_image, read_image_bytes, to_mode

PIXEL_SIDE = 16  # pixels: the image squashed to 16 x 16 grayscale
HOG_SIDE = 32  # HOG runs on the image squashed to 32 x 32 grayscale
HOG_CELL = 8  # pixels per cell side: 4 x 4 cells
HOG_BINS = 9  # orientation sectors of 20 degrees
HOG_BLOCK = 2  # cells per block side
HYS_CLIP = 0.2  # L2-Hys: values clipped at this after the first normalisation


def load_gray(value: Path | bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Decodes an image file (path or bytes) to an 8-bit grayscale Pillow image.

    Raises:
        BadValueError: missing, empty or undecodable file, or more than ``max_pixels`` pixels.
    """
    data, name = read_image_bytes(value)
    return to_mode(decode_image(data, name, max_pixels), 1)


def squash(image: Image.Image, side: int) -> np.ndarray:
    """(side, side) float32 pixels in [0, 1]: the image resized (bilinear, aspect ratio not kept)."""
    resized = image.resize((side, side), Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.float32) / 255.0  # (side, side)


def hog(gray: np.ndarray, cell: int = HOG_CELL, bins: int = HOG_BINS, block: int = HOG_BLOCK) -> np.ndarray:
    """The HOG descriptor of a grayscale image.

    Args:
        gray: (H, W) float pixels; H and W are cut down to whole cells.
        cell: pixels per cell side.
        bins: orientation sectors over 0..180 degrees (bin 0 holds gradients pointing along x, i.e. edges
            running along y).
        block: cells per normalisation block side.

    Returns:
        (blocks_y * blocks_x * block * block * bins,) float32, each block L2-Hys normalised.

    Raises:
        ValueError: the image is smaller than one block.
    """
    cells_y, cells_x = gray.shape[0] // cell, gray.shape[1] // cell
    if cells_y < block or cells_x < block:
        raise ValueError(f"image of {gray.shape} pixels is smaller than a HOG block of {block * cell} pixels")
    image = gray[: cells_y * cell, : cells_x * cell].astype(np.float64)  # (H, W)
    gx, gy = np.zeros_like(image), np.zeros_like(image)
    gx[:, 1:-1] = image[:, 2:] - image[:, :-2]  # central differences; 0 on the border
    gy[1:-1, :] = image[2:, :] - image[:-2, :]
    magnitude = np.hypot(gx, gy)  # (H, W)
    angle = np.rad2deg(np.arctan2(gy, gx)) % 180.0  # (H, W) unsigned orientation
    sector = np.minimum((angle / (180.0 / bins)).astype(np.int64), bins - 1)  # (H, W)
    onehot = np.zeros((*image.shape, bins))  # (H, W, bins)
    np.put_along_axis(onehot, sector[..., None], magnitude[..., None], axis=-1)
    cells = onehot.reshape(cells_y, cell, cells_x, cell, bins).sum(axis=(1, 3))  # (Cy, Cx, bins)
    # every block x block window of cells, with a stride of one cell: (By, Bx, bins, b, b)
    blocks = np.lib.stride_tricks.sliding_window_view(cells, (block, block), axis=(0, 1))
    blocks = blocks.reshape(blocks.shape[0], blocks.shape[1], -1)  # (By, Bx, bins * b * b)
    blocks = _l2(np.minimum(_l2(blocks), HYS_CLIP))
    return blocks.reshape(-1).astype(np.float32)


def _l2(values: np.ndarray) -> np.ndarray:
    """Each vector of the last axis divided by its L2 norm (plus a small epsilon)."""
    return values / np.sqrt((values**2).sum(axis=-1, keepdims=True) + 1e-10)


def image_features(value: Path | bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Pixels (16 x 16 grayscale) then the HOG of the 32 x 32 grayscale image: (256 + 324,) float32.

    Raises:
        BadValueError: see ``load_gray``.
    """
    image = load_gray(value, max_pixels)
    pixels = squash(image, PIXEL_SIDE).reshape(-1)  # (256,)
    return np.concatenate([pixels, hog(squash(image, HOG_SIDE))])  # (580,)

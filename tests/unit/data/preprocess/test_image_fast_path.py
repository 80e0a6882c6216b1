"""The image fast path skips no work that changes pixels: EXIF orientation in a PNG is still applied,
a plain PNG gives what ``exif_transpose`` would, a same-size image is not resized."""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image, ImageOps

from omnifuse.data.preprocess.image import ImagePreprocessor, may_have_exif


def _png(pixels: np.ndarray, orientation: int | None = None) -> bytes:
    image = Image.fromarray(pixels)
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    buffer = io.BytesIO()
    image.save(buffer, "PNG", exif=exif.tobytes() if orientation is not None else b"")
    return buffer.getvalue()


def test_png_with_exif_orientation_is_still_rotated() -> None:
    pixels = np.zeros((4, 6), dtype=np.uint8)
    pixels[0, :] = 255  # a white top row
    data = _png(pixels, orientation=6)  # "rotate 90 CW to display"
    opened = Image.open(io.BytesIO(data))
    opened.load()
    assert may_have_exif(opened)
    out = ImagePreprocessor(size=6, channels=1)(data)["pixels"][0]  # (6, 6) after the squash
    expected = np.asarray(ImageOps.exif_transpose(opened).resize((6, 6), Image.Resampling.BILINEAR))
    assert torch.equal(out, torch.from_numpy(expected.copy()))
    assert out[:, -1].min() > 0  # the white row is now the right-hand column


def test_plain_png_skips_exif_and_resize_with_the_same_pixels() -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (8, 8), dtype=np.uint8)
    data = _png(pixels)
    opened = Image.open(io.BytesIO(data))
    opened.load()
    assert not may_have_exif(opened)
    out = ImagePreprocessor(size=8, channels=1)(data)["pixels"]
    reference = ImageOps.exif_transpose(opened).resize((8, 8), Image.Resampling.BILINEAR)
    assert out.shape == (1, 8, 8) and torch.equal(out[0], torch.from_numpy(np.asarray(reference).copy()))
    assert torch.equal(out[0], torch.from_numpy(pixels))

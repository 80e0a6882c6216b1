"""The image fast path skips no work that changes pixels: EXIF orientation in a PNG is still applied,
a plain PNG gives what ``exif_transpose`` would, a same-size image is not resized, the tensor is the one
``np.array`` would give, and a path is read as ``Path.read_bytes`` would read it."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from omnifuse.data.preprocess.image import ImagePreprocessor, may_have_exif, pixels_of, read_image_bytes
from omnifuse.errors import BadValueError


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


@pytest.mark.parametrize("mode", ["L", "RGB"])
@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (28, 28), (7, 64)])
def test_pixels_of_is_what_numpy_gives(mode: str, shape: tuple[int, int]) -> None:
    channels = 1 if mode == "L" else 3
    array = np.random.default_rng(1).integers(0, 256, (*shape, channels), dtype=np.uint8)
    image = Image.fromarray(array[:, :, 0] if mode == "L" else array, mode)
    out = pixels_of(image)
    assert out.dtype == torch.uint8 and out.shape == (channels, *shape) and out.is_contiguous()
    assert torch.equal(out, torch.from_numpy(np.array(image).reshape(*shape, channels)).permute(2, 0, 1))
    out[0, 0, 0] = 7  # writable, and owns its memory: the image is untouched
    assert np.array(image).reshape(*shape, channels)[0, 0, 0] == array[0, 0, 0]


def test_path_and_str_read_the_bytes_path_read_bytes_reads(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    path.write_bytes(b"\x89PNG not really")
    for value in (path, str(path), str(tmp_path) + "//a.png"):
        assert read_image_bytes(value)[0] == path.read_bytes()
    # A trailing slash fails open() but Path drops it: the fallback keeps reading the file as before.
    assert read_image_bytes(str(path) + "/")[0] == path.read_bytes()


def test_an_empty_string_is_still_the_current_folder() -> None:
    with pytest.raises(BadValueError, match="'' is a directory, not an image file"):
        read_image_bytes("")

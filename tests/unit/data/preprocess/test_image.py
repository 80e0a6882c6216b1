"""ImagePreprocessor: every Pillow mode, EXIF orientation, bytes input, and each error message."""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from omnifuse.data.preprocess.image import (
    HFImagePreprocessor,
    ImagePreprocessor,
    processor_size,
    scale_to_uint8,
)
from omnifuse.errors import BadValueError

SIZE = 8


def encode(image: Image.Image, fmt: str, **kwargs: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def pixels(value: object, channels: int = 3, size: int = SIZE) -> torch.Tensor:
    out = ImagePreprocessor(size, channels)(value)
    assert set(out) == {"pixels"}
    return out["pixels"]


def noise(mode: str, size: tuple[int, int] = (64, 64)) -> Image.Image:
    rng = np.random.default_rng(0)
    depth = {"L": 1, "RGB": 3}[mode]
    array = rng.integers(0, 256, size=(size[1], size[0], depth), dtype=np.uint8)
    return Image.fromarray(array.squeeze(-1) if depth == 1 else array)


# -- modes --------------------------------------------------------------------------------------------


def test_rgb_png_path_gives_uint8_chw() -> None:
    image = Image.new("RGB", (20, 12), (10, 200, 30))
    out = pixels(encode(image, "PNG"))
    assert out.dtype == torch.uint8 and out.shape == (3, SIZE, SIZE)
    assert out[:, 0, 0].tolist() == [10, 200, 30]


def test_path_input(tmp_path: Path) -> None:
    path = write(tmp_path, "a.png", encode(Image.new("RGB", (5, 5), (1, 2, 3)), "PNG"))
    assert pixels(path)[:, 2, 2].tolist() == [1, 2, 3]
    assert pixels(str(path))[:, 2, 2].tolist() == [1, 2, 3]


def test_grayscale_l_to_rgb_and_to_l() -> None:
    data = encode(Image.new("L", (9, 9), 77), "PNG")
    assert pixels(data, channels=3)[:, 0, 0].tolist() == [77, 77, 77]
    assert pixels(data, channels=1).shape == (1, SIZE, SIZE)
    assert pixels(data, channels=1)[0, 0, 0].item() == 77


def test_rgb_to_grayscale_uses_luma() -> None:
    data = encode(Image.new("RGB", (4, 4), (255, 0, 0)), "PNG")
    assert pixels(data, channels=1)[0, 0, 0].item() == 76  # 0.299 * 255


def test_rgba_transparent_is_white_and_opaque_kept() -> None:
    image = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    image.paste((200, 10, 10, 255), (0, 0, 4, 8))
    out = pixels(encode(image, "PNG"))
    assert out[:, 0, 0].tolist() == [200, 10, 10]
    assert out[:, 0, 7].tolist() == [255, 255, 255]


def test_la_half_transparent_blends_on_white() -> None:
    out = pixels(encode(Image.new("LA", (4, 4), (0, 128)), "PNG"), channels=1)
    assert 120 <= out[0, 0, 0].item() <= 135


def test_palette_image() -> None:
    image = Image.new("RGB", (6, 6), (0, 0, 255)).convert("P")
    out = pixels(encode(image, "PNG"))
    assert out[:, 0, 0].tolist() == [0, 0, 255]


def test_palette_with_transparency_is_white() -> None:
    image = Image.new("P", (6, 6), 0)
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    image.paste(1, (0, 0, 3, 6))
    out = pixels(encode(image, "PNG", transparency=0))
    assert out[:, 0, 0].tolist() == [255, 0, 0]
    assert out[:, 0, 7].tolist() == [255, 255, 255]


def test_cmyk_jpeg() -> None:
    image = Image.new("CMYK", (16, 16), (0, 255, 255, 0))  # pure red in CMYK
    out = pixels(encode(image, "JPEG", quality=95))
    red, green, blue = out[:, 4, 4].tolist()
    assert red > 200 and green < 60 and blue < 60


def test_16_bit_png_is_scaled_to_8_bit() -> None:
    array = np.full((6, 6), 65535, dtype=np.uint16)
    array[:, 3:] = 257 * 100
    image = Image.fromarray(array)  # uint16: mode I;16
    data = encode(image, "PNG")
    assert Image.open(io.BytesIO(data)).mode in ("I;16", "I")
    out = pixels(data, channels=1, size=6)
    assert out[0, 0, 0].item() == 255 and out[0, 0, 5].item() == 100


def test_scale_to_uint8_keeps_8_bit_range_of_mode_i() -> None:
    assert scale_to_uint8(np.array([[0, 128, 255]], dtype=np.int32)).tolist() == [[0, 128, 255]]
    assert scale_to_uint8(np.array([[0, 65535, 70000]], dtype=np.int32)).tolist() == [[0, 255, 255]]


def test_one_bit_image() -> None:
    image = Image.new("1", (8, 8), 0)
    image.paste(1, (0, 0, 4, 8))
    out = pixels(encode(image, "PNG"), channels=1)
    assert out[0, 0, 0].item() == 255 and out[0, 0, 7].item() == 0


@pytest.mark.parametrize("fmt", ["BMP", "WEBP", "GIF", "JPEG"])
def test_other_formats(fmt: str) -> None:
    kwargs = {"lossless": True} if fmt == "WEBP" else {}
    out = pixels(encode(Image.new("RGB", (10, 10), (0, 255, 0)), fmt, **kwargs))
    red, green, blue = out[:, 5, 5].tolist()
    assert green > 200 and red < 60 and blue < 60


def test_animated_gif_uses_first_frame() -> None:
    frames = [Image.new("RGB", (6, 6), c) for c in [(255, 0, 0), (0, 0, 255)]]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:])
    red, _, blue = pixels(buffer.getvalue())[:, 3, 3].tolist()
    assert red > 200 and blue < 60


def test_exif_orientation_is_applied() -> None:
    image = Image.new("RGB", (16, 8), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 8, 8))  # left half red, right half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: display = 90 degrees clockwise, so the red half goes on top
    out = pixels(encode(image, "JPEG", exif=exif.tobytes(), quality=95))
    assert out[0, 0, SIZE // 2].item() > 200 and out[2, 0, SIZE // 2].item() < 60  # top: red
    assert out[2, -1, SIZE // 2].item() > 200 and out[0, -1, SIZE // 2].item() < 60  # bottom: blue


def test_resize_squashes_to_square() -> None:
    out = pixels(encode(Image.new("RGB", (100, 10)), "PNG"), size=12)
    assert out.shape == (3, 12, 12)


def test_blank_and_state() -> None:
    pre = ImagePreprocessor(16, 1)
    pre.fit([b"anything"])
    assert torch.equal(pre.blank()["pixels"], torch.zeros(1, 16, 16, dtype=torch.uint8))
    state = json.loads(json.dumps(pre.state_dict()))
    assert state["size"] == 16 and state["channels"] == 1 and state["mean"] == [0.5]
    other = ImagePreprocessor(32, 3)
    other.load_state_dict(state)
    assert (other.size, other.channels, other.mean, other.std) == (16, 1, [0.5], [0.5])


def test_bad_channels() -> None:
    with pytest.raises(ValueError, match="channels must be 1"):
        ImagePreprocessor(8, 2)


# -- errors -------------------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(BadValueError, match=r"image file '.*nope\.png' does not exist; check the path"):
        pixels(tmp_path / "nope.png")


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(BadValueError, match=r"is a directory, not an image file; point the cell"):
        pixels(tmp_path)


def test_zero_byte_file(tmp_path: Path) -> None:
    with pytest.raises(
        BadValueError, match=r"image file '.*empty\.png' is empty \(0 bytes\); fix or replace"
    ):
        pixels(write(tmp_path, "empty.png", b""))


def test_text_file_named_png(tmp_path: Path) -> None:
    path = write(tmp_path, "x.png", b"hello, I am not a picture\n")
    with pytest.raises(
        BadValueError, match=r"cannot decode '.*x\.png' \(not a PNG/JPEG/BMP/WebP/GIF image\)"
    ):
        pixels(path)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_image(tmp_path: Path, fmt: str) -> None:
    data = encode(noise("RGB"), fmt)
    path = write(tmp_path, f"cut.{fmt.lower()}", data[: len(data) // 2])
    with pytest.raises(BadValueError, match=r"cannot decode '.*cut\.\w+' \(truncated or corrupt image data"):
        pixels(path)


def test_wrong_value_type() -> None:
    with pytest.raises(BadValueError, match="expected an image file path or bytes, got int"):
        pixels(3)


def test_too_many_pixels() -> None:
    pre = ImagePreprocessor(8, 3, max_pixels=100)
    assert pre(encode(Image.new("RGB", (10, 10)), "PNG"))["pixels"].shape == (3, 8, 8)
    with pytest.raises(BadValueError, match=r"is 11x10 = 110 pixels, above the limit of 100 .*downscale"):
        pre(encode(Image.new("RGB", (11, 10)), "PNG"))


def test_pillow_bomb_checks_do_not_leak(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 50)
    pre = ImagePreprocessor(4, 3, max_pixels=10_000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Pillow's DecompressionBombWarning (between 50 and 100 pixels)
        assert pre(encode(Image.new("RGB", (9, 9)), "PNG"))["pixels"].shape == (3, 4, 4)
    with pytest.raises(BadValueError, match="more pixels than the limit"):  # Pillow's error above 2x
        pre(encode(Image.new("RGB", (20, 20)), "PNG"))


# -- Hugging Face variant ------------------------------------------------------------------------------


def test_hf_preprocessor_reads_size_and_normalisation(tmp_path: Path) -> None:
    processor = {"do_normalize": True, "image_mean": [0.1, 0.2, 0.3], "image_std": [0.4, 0.5, 0.6]}
    processor |= {
        "do_center_crop": True,
        "crop_size": {"height": 20, "width": 20},
        "size": {"shortest_edge": 24},
    }
    (tmp_path / "preprocessor_config.json").write_text(json.dumps(processor))
    pre = HFImagePreprocessor(str(tmp_path))
    pre.fit([])
    assert (pre.size, pre.mean, pre.std) == (20, [0.1, 0.2, 0.3], [0.4, 0.5, 0.6])
    out = tmp_path / "saved"
    pre.save_assets(out)
    assert processor_size(json.loads((out / "preprocessor_config.json").read_text())) == 20
    restored = HFImagePreprocessor("hub/name-never-read")
    restored.load_state_dict(pre.state_dict())
    assert restored.blank()["pixels"].shape == (3, 20, 20)


def test_hf_preprocessor_falls_back_to_config_then_224(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"vision_config": {"image_size": 40}}))
    pre = HFImagePreprocessor(str(tmp_path))
    assert pre(encode(Image.new("RGB", (5, 5)), "PNG"))["pixels"].shape == (3, 40, 40)  # resolves lazily
    assert pre.mean == [0.5, 0.5, 0.5]
    empty = HFImagePreprocessor(str(tmp_path / "missing"))
    empty.resolve()
    assert empty.size == 224
    assert HFImagePreprocessor(str(tmp_path), size=12).blank()["pixels"].shape == (3, 12, 12)


@pytest.mark.parametrize(
    ("processor", "size"),
    [
        ({"size": 30}, 30),
        ({"size": {"height": 31, "width": 31}}, 31),
        ({"size": {"shortest_edge": 32}}, 32),
        ({}, None),
    ],
)
def test_processor_size(processor: dict[str, object], size: int | None) -> None:
    assert processor_size(processor) == size

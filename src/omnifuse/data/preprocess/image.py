"""Image preprocessing: decode any common image file with Pillow into a small (C, size, size) uint8 tensor.

Images are squashed (not cropped) to ``size x size`` with bilinear resampling: simple and it never cuts off
the object, at the price of distorting the aspect ratio. Pixels stay uint8 so that cached rows are 4x
smaller than floats; the encoder normalises them with the ``mean``/``std`` kept in this preprocessor's state.
"""

from __future__ import annotations

import io
import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor

from omnifuse.data.preprocess.base import Preprocessor
from omnifuse.errors import BadValueError, OptionError

DEFAULT_MAX_PIXELS = 89_478_485  # Pillow's own default decompression-bomb limit
FORMATS = "PNG/JPEG/BMP/WebP/GIF"
HALF = (0.5, 0.5, 0.5)
_SKIP_FIX = "fix or replace the file, or set data.on_bad_row: skip"


class ImagePreprocessor(Preprocessor):
    """Decodes an image file (path or bytes) into ``{"pixels": (C, size, size) uint8}``.

    Handles EXIF orientation, palette/alpha images (transparent areas become white), CMYK, 16-bit and
    1-bit images. ``fit`` learns nothing.

    Args:
        size: the side of the square output, in pixels.
        channels: 3 for RGB, 1 for grayscale (ITU-R 601 luma).
        max_pixels: images with more than ``width * height`` pixels are refused before decoding.
        mean: per-channel mean on the [0, 1] scale, used by the encoder to normalise (default 0.5 each).
        std: per-channel standard deviation on the [0, 1] scale, used by the encoder (default 0.5 each).
    """

    def __init__(
        self,
        size: int,
        channels: int = 3,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ) -> None:
        if channels not in (1, 3):
            raise OptionError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels!r}")
        self.size = size
        self.channels = channels
        self.max_pixels = max_pixels
        self.mean = [float(m) for m in mean] if mean is not None else [0.5] * channels
        self.std = [float(s) for s in std] if std is not None else [0.5] * channels

    def __call__(self, value: Any) -> dict[str, Tensor]:
        """Decodes one image.

        Args:
            value: a ``pathlib.Path`` (or ``str``) of an image file, or the file's raw ``bytes``.

        Returns:
            ``{"pixels": (C, size, size) uint8}``.

        Raises:
            BadValueError: missing/empty file, a directory, not an image, truncated data, too many pixels.
        """
        data, name = read_image_bytes(value)
        image = decode_image(data, name, self.max_pixels)
        image = to_mode(image, self.channels)
        if image.size != (self.size, self.size):  # resizing to the same size would only copy
            image = image.resize((self.size, self.size), Image.Resampling.BILINEAR)
        return {"pixels": pixels_of(image)}  # (C, H, W)

    def blank(self) -> dict[str, Tensor]:
        """All-zero pixels for a missing image."""
        return {"pixels": torch.zeros(self.channels, self.size, self.size, dtype=torch.uint8)}

    def state_dict(self) -> dict[str, Any]:
        """Size, channels and the normalisation the encoder applies."""
        return {"size": self.size, "channels": self.channels, "mean": self.mean, "std": self.std}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores ``state_dict``."""
        self.size = int(state["size"])
        self.channels = int(state["channels"])
        self.mean = [float(m) for m in state.get("mean", [0.5] * self.channels)]
        self.std = [float(s) for s in state.get("std", [0.5] * self.channels)]


class HFImagePreprocessor(ImagePreprocessor):
    """An ImagePreprocessor whose size and mean/std come from a Hugging Face model's files.

    Resolution happens in ``fit`` (or on first use) rather than at construction, so that a saved model
    is rebuilt from its state without touching the hub. Order: ``preprocessor_config.json``
    (``crop_size`` when centre-cropping, else ``size``), then the model config's ``image_size``
    (``vision_config.image_size`` for CLIP-like configs), then 224. Mean/std default to 0.5.

    Args:
        model: hub name or local folder of the model.
        size: side of the square input; None reads it from the model's files.
        max_pixels: see ``ImagePreprocessor``.
    """

    def __init__(self, model: str, size: int | None = None, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        super().__init__(size or 224, 3, max_pixels)
        self.model = model
        self.requested_size = size
        self.resolved = False

    def fit(self, values: Sequence[Any]) -> None:
        """Reads size and mean/std from the model's files (the values are not needed)."""
        self.resolve()

    def resolve(self) -> None:
        """Reads size and mean/std from ``preprocessor_config.json`` / ``config.json``, once."""
        if self.resolved:
            return
        processor = read_hf_json(self.model, "preprocessor_config.json")
        if processor.get("do_normalize", True):
            self.mean = [float(m) for m in processor.get("image_mean", HALF)]
            self.std = [float(s) for s in processor.get("image_std", HALF)]
        else:
            self.mean, self.std = [0.0] * 3, [1.0] * 3
        self.size = self.requested_size or processor_size(processor) or config_image_size(self.model) or 224
        self.resolved = True

    def __call__(self, value: Any) -> dict[str, Tensor]:
        """See ``ImagePreprocessor.__call__``; resolves the model's size first if ``fit`` was skipped."""
        self.resolve()
        return super().__call__(value)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores ``state_dict``; the model's files are not read again."""
        super().load_state_dict(state)
        self.resolved = True

    def save_assets(self, folder: Path) -> None:
        """Writes a ``preprocessor_config.json`` describing the resolved input (size, mean, std)."""
        self.resolve()
        config = {
            "do_resize": True,
            "size": {"height": self.size, "width": self.size},
            "do_rescale": True,
            "rescale_factor": 1 / 255,
            "do_normalize": True,
            "image_mean": self.mean,
            "image_std": self.std,
        }
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "preprocessor_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")


# -- decoding --------------------------------------------------------------------------------------------


def read_image_bytes(value: Any) -> tuple[bytes, str]:
    """The file's bytes and a name for messages; checks the path exists, is a file and is not empty."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        name = f"<{len(data)} bytes>"
    elif isinstance(value, (str, Path)):
        name = str(value)
        try:  # unbuffered open + readall: 3.2 us per small PNG where Path.read_bytes took 7.9
            with open(value, "rb", buffering=0) as file:
                data = file.readall()
        except OSError:  # the reasons (and the odd paths Path normalises, "a.png/") from the old way
            data = _read_path(value, name)
    else:
        raise BadValueError(
            f"expected an image file path or bytes, got {type(value).__name__} {value!r:.60}",
            "put a file path in the image column",
        )
    if not data:
        raise BadValueError(f"image file '{name}' is empty (0 bytes)", _SKIP_FIX)
    return data, name


def _read_path(value: str | Path, name: str) -> bytes:
    """``Path(value).read_bytes()``, its errors as BadValueErrors that say why."""
    try:
        return Path(value).read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        raise BadValueError(
            f"image file '{name}' does not exist",
            "check the path (relative paths are read from the table's folder)",
        ) from None
    except IsADirectoryError:
        fix = "point the cell at a file"
        raise BadValueError(f"'{name}' is a directory, not an image file", fix) from None
    except OSError as exc:
        raise BadValueError(f"cannot read image file '{name}' ({exc.strerror})", _SKIP_FIX) from None


def decode_image(data: bytes, name: str, max_pixels: int) -> Image.Image:
    """Opens, checks the pixel count, fully decodes and applies EXIF orientation.

    Raises:
        BadValueError: not an image, truncated/corrupt data, or more than ``max_pixels`` pixels.
    """
    too_big_fix = "downscale the image, or raise the image encoder option max_pixels if it is trusted"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data))
        except Image.DecompressionBombError:
            raise BadValueError(
                f"image '{name}' has more pixels than the limit of {max_pixels} (decompression-bomb guard)",
                too_big_fix,
            ) from None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
            raise BadValueError(f"cannot decode '{name}' (not a {FORMATS} image)", _SKIP_FIX) from None
        width, height = image.size
        if width * height > max_pixels:
            raise BadValueError(
                f"image '{name}' is {width}x{height} = {width * height} pixels, above the limit of "
                f"{max_pixels} (decompression-bomb guard)",
                too_big_fix,
            )
        try:
            image.load()  # forces the full decode so truncated data fails here, not later
            return ImageOps.exif_transpose(image) if may_have_exif(image) else image
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            reason = f"cannot decode '{name}' (truncated or corrupt image data: {exc})"
            raise BadValueError(reason, _SKIP_FIX) from None


def may_have_exif(image: Image.Image) -> bool:
    """False only for a PNG/BMP/GIF with no EXIF-like entry in its info (then there is no orientation)."""
    if image.format not in ("PNG", "BMP", "GIF"):
        return True
    return any("exif" in str(key).lower() for key in image.info)


def to_mode(image: Image.Image, channels: int) -> Image.Image:
    """Converts any Pillow mode to 8-bit ``L`` (channels 1) or ``RGB`` (channels 3).

    Transparent pixels (alpha channel or a palette/colour-key transparency) are composited on white;
    16/32-bit integer and float images are scaled to 8 bits.
    """
    target = "L" if channels == 1 else "RGB"
    if image.mode in ("I", "I;16", "I;16L", "I;16B", "I;16N", "F"):
        image = Image.fromarray(scale_to_uint8(np.asarray(image)))  # 2-D uint8: mode L
    elif image.mode == "1":
        image = image.convert("L")
    elif "A" in image.mode or "a" in image.mode or "transparency" in image.info:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba).convert("RGB")
    if image.mode != target:
        try:
            image = image.convert(target)
        except ValueError:
            raise BadValueError(
                f"cannot convert an image of mode {image.mode!r} to {target}", "save the image as RGB PNG"
            ) from None
    return image


def pixels_of(image: Image.Image) -> Tensor:
    """The pixels of an 8-bit ``L`` or ``RGB`` image as a (C, H, W) uint8 tensor.

    What ``torch.from_numpy(np.array(image)).permute(2, 0, 1)`` gives, in fewer steps: one copy out of
    Pillow (``tobytes``, row-major, no padding), into a writable buffer torch takes without copying.
    """
    width, height = image.size
    flat = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8)  # (H * W * C,)
    if image.mode == "L":
        return flat.view(1, height, width)  # (1, H, W)
    assert image.mode == "RGB", image.mode  # to_mode gives nothing else
    return flat.view(height, width, 3).permute(2, 0, 1).contiguous()  # (3, H, W)


def scale_to_uint8(array: np.ndarray) -> np.ndarray:
    """Scales a 16/32-bit or float grayscale array to uint8.

    Values already in 0..255 are kept; wider ranges are read as 16-bit (0..65535 -> 0..255).
    """
    values = array.astype(np.float64)
    if values.size and values.max() > 255:
        values = np.clip(values, 0, 65535) / 257.0
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


# -- Hugging Face model files ----------------------------------------------------------------------------


def read_hf_json(model: str, filename: str) -> dict[str, Any]:
    """A JSON file of a local model folder or a cached hub model; ``{}`` when it is absent or unreachable."""
    folder = Path(model)
    if folder.is_dir():
        path: Path | None = folder / filename
    else:
        try:
            from transformers.utils import cached_file

            found = cached_file(model, filename, _raise_exceptions_for_missing_entries=False)
        except (OSError, ValueError):
            found = None
        path = Path(found) if found else None
    if path is None or not path.is_file():
        return {}
    loaded = json.loads(path.read_text(encoding="utf-8"))
    return loaded if isinstance(loaded, dict) else {}


def processor_size(processor: dict[str, Any]) -> int | None:
    """The input side an HF image processor config asks for (``crop_size`` when it centre-crops)."""
    candidates = []
    if processor.get("do_center_crop"):
        candidates.append(processor.get("crop_size"))
    candidates.append(processor.get("size"))
    for item in candidates:
        if isinstance(item, int):
            return item
        if isinstance(item, dict):
            for key in ("height", "shortest_edge"):
                if isinstance(item.get(key), int):
                    return int(item[key])
    return None


def config_image_size(model: str) -> int | None:
    """``image_size`` of the model config (or of its ``vision_config``), if it has one."""
    config = read_hf_json(model, "config.json")
    for source in (config, config.get("vision_config") or {}):
        size = source.get("image_size")
        if isinstance(size, int):
            return size
        if isinstance(size, list) and size and isinstance(size[0], int):
            return int(size[0])
    return None

"""Writes the corpus of bad and odd inputs used by tests/integration/test_bad_corpus.py.

Deterministic (fixed seeds, no timestamps in the files), no downloads, small: the committed folder
``tests/assets/bad/`` stays well under 3 MB. Big inputs (a 10-minute clip, a large image) are not
committed: the tests write them into a temporary folder with ``write_long_clip`` / ``write_big_image``.

Usage:
    python scripts/make_bad_corpus.py [OUT_DIR]   # default tests/assets/bad
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
from PIL import Image

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "tests" / "assets" / "bad"
RATE = 8000  # Hz, the rate of most clips (small files)
RED, BLUE = (220, 20, 20), (20, 20, 220)


# -- images ------------------------------------------------------------------------------------------


def _noise_rgb(side: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, size=(side, side, 3), dtype=np.uint8), "RGB")


def _encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def half_red_half_blue(width: int, height: int) -> Image.Image:
    """Left half red, right half blue (used to see rotations)."""
    array = np.zeros((height, width, 3), dtype=np.uint8)  # (H, W, 3)
    array[:, : width // 2] = RED
    array[:, width // 2 :] = BLUE
    return Image.fromarray(array, "RGB")


def write_images(folder: Path) -> dict[str, Path]:
    """Writes the bad and odd images; returns name -> path.

    Bad: ``zero.png`` (0 bytes), ``truncated.png`` / ``truncated.jpg`` (first half of the file),
    ``text.png`` (a text file). Odd but fine: ``cmyk.jpg``, ``gray16.png`` (16-bit), ``rgba.png``,
    ``palette.png`` (with a transparent index), ``one_pixel.png``, ``animated.gif`` (red then blue
    frame), ``exif_rotated.jpg`` (stored 16x8 left red / right blue, EXIF orientation 6 = 90 deg clockwise),
    ``big.png`` (64x64, above a small ``max_pixels``).
    """
    folder.mkdir(parents=True, exist_ok=True)
    noise = _noise_rgb(48, seed=0)
    files: dict[str, bytes] = {"zero.png": b"", "text.png": b"this is not an image, just text\n"}
    png, jpeg = _encoded(noise, "PNG"), _encoded(noise, "JPEG", quality=90)
    files["truncated.png"], files["truncated.jpg"] = png[: len(png) // 2], jpeg[: len(jpeg) // 2]
    files["cmyk.jpg"] = _encoded(_noise_rgb(16, 1).convert("CMYK"), "JPEG")
    ramp = (np.arange(256, dtype=np.uint16).reshape(16, 16) * 257).astype("<u2")  # (H, W) 16-bit
    files["gray16.png"] = _encoded(Image.fromarray(ramp), "PNG")
    rgba = np.zeros((16, 16, 4), dtype=np.uint8)  # (H, W, 4): red, left half transparent
    rgba[..., 0], rgba[:, 8:, 3] = 255, 255
    files["rgba.png"] = _encoded(Image.fromarray(rgba, "RGBA"), "PNG")
    palette = _noise_rgb(16, 2).convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    files["palette.png"] = _encoded(palette, "PNG", transparency=0)
    files["one_pixel.png"] = _encoded(Image.new("RGB", (1, 1), RED), "PNG")
    frames = [Image.new("RGB", (16, 16), RED), Image.new("RGB", (16, 16), BLUE)]
    files["animated.gif"] = _encoded(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    files["exif_rotated.jpg"] = _encoded(half_red_half_blue(16, 8), "JPEG", quality=95, exif=exif)
    files["big.png"] = _encoded(Image.new("RGB", (64, 64), BLUE), "PNG")
    return _write_all(folder, files)


def write_big_image(path: Path, side: int) -> Path:
    """A ``side x side`` PNG (solid colour, so the file is small even for large sides)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", (side, side), 128).save(path, format="PNG")
    return path


# -- audio -------------------------------------------------------------------------------------------


def tone(seconds: float, rate: int = RATE, channels: int = 1, hz: float = 440.0) -> np.ndarray:
    """A 0.5-amplitude sine, (N,) or (N, channels) float32."""
    t = np.arange(round(seconds * rate)) / rate
    wave = (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)  # (N,)
    return wave if channels == 1 else np.repeat(wave[:, None], channels, axis=1)  # (N, C)


def _wav(data: np.ndarray, rate: int, subtype: str) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, data, rate, format="WAV", subtype=subtype)
    return buffer.getvalue()


def write_audio(folder: Path) -> dict[str, Path]:
    """Writes the bad and odd clips; returns name -> path.

    Bad: ``zero.wav`` (0 bytes), ``truncated_header.wav`` (first 30 bytes, cut inside the header).
    Odd but fine: ``silent.wav``, ``short_10ms.wav``, ``pcm_u8.wav``, ``pcm_24.wav``, ``float.wav``,
    ``stereo.wav``, ``six_channel.wav``, ``rate_8k.wav``, ``rate_96k.wav``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    good = _wav(tone(0.2), RATE, "PCM_16")
    files = {
        "zero.wav": b"",
        "truncated_header.wav": good[:30],
        "silent.wav": _wav(np.zeros(RATE // 5, dtype=np.float32), RATE, "PCM_16"),
        "short_10ms.wav": _wav(tone(0.01), RATE, "PCM_16"),
        "pcm_u8.wav": _wav(tone(0.2), RATE, "PCM_U8"),
        "pcm_24.wav": _wav(tone(0.2), RATE, "PCM_24"),
        "float.wav": _wav(tone(0.2), RATE, "FLOAT"),
        "stereo.wav": _wav(tone(0.2, channels=2), RATE, "PCM_16"),
        "six_channel.wav": _wav(tone(0.2, channels=6), RATE, "PCM_16"),
        "rate_8k.wav": good,
        "rate_96k.wav": _wav(tone(0.1, rate=96000), 96000, "PCM_16"),
    }
    return _write_all(folder, files)


def write_long_clip(path: Path, seconds: float = 600.0, rate: int = RATE) -> Path:
    """A long 16-bit WAV written one second at a time (never the whole clip in memory)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    second = tone(1.0, rate)
    with sf.SoundFile(path, "w", samplerate=rate, channels=1, subtype="PCM_16", format="WAV") as handle:
        for _ in range(int(seconds)):
            handle.write(second)
    return path


# -- tables ------------------------------------------------------------------------------------------


def write_tables(folder: Path) -> dict[str, Path]:
    """Writes the bad tables; returns name -> path.

    ``non_utf8.csv`` (a Latin-1 byte on line 3), ``duplicate_columns.csv``, ``empty.csv`` (0 bytes),
    ``header_only.csv`` (no rows).
    """
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "non_utf8.csv": "note,animal\nfine,cat\ncaf\xe9,dog\n".encode("latin-1"),
        "duplicate_columns.csv": b"note,note,animal\na,b,cat\n",
        "empty.csv": b"",
        "header_only.csv": b"note,animal\n",
    }
    return _write_all(folder, files)


def _write_all(folder: Path, files: dict[str, bytes]) -> dict[str, Path]:
    paths = {}
    for name, data in files.items():
        paths[name] = folder / name
        paths[name].write_bytes(data)
    return paths


def make_corpus(out: Path = DEFAULT_OUT) -> dict[str, Path]:
    """Writes every committed corpus file under ``out`` (images/, audio/, tables/)."""
    return {
        **{f"images/{k}": v for k, v in write_images(out / "images").items()},
        **{f"audio/{k}": v for k, v in write_audio(out / "audio").items()},
        **{f"tables/{k}": v for k, v in write_tables(out / "tables").items()},
    }


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_OUT
    written = make_corpus(target)
    total = sum(p.stat().st_size for p in written.values())
    print(f"wrote {len(written)} files ({total / 1024:.1f} KiB) to {target}")

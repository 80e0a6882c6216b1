"""Synthetic sample rows for tracing and parity checks: made by the model's own fitted preprocessors.

Export needs a batch of real-looking preprocessed tensors (valid token ids, decodable images, audio of
different lengths) without the training table; these are made from generated cells of each modality.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from omnifuse.data.collate import Example
from omnifuse.data.preprocess.base import Preprocessor
from omnifuse.encoders.base import InputSpec
from omnifuse.errors import OmnifuseError

WORDS = ("the", "cat", "sat", "on", "a", "mat", "dog", "ran", "far", "away", "quickly", "home")


def sample_cell(spec: InputSpec, preprocessor: Preprocessor, row: int, rng: np.random.Generator) -> Any:
    """A generated cell of ``spec``'s modality for row ``row``; rows differ in length (text, audio).

    Raises:
        OmnifuseError: a modality with no sample generator (the message names it).
    """
    if spec.modality == "text":
        return " ".join(rng.choice(WORDS, size=2 + 3 * (row % 4)))
    if spec.modality == "image":
        return _png_bytes(rng)
    if spec.modality == "audio":
        return _wav_bytes(rng, seconds=0.08 + 0.07 * (row % 4))
    if spec.modality == "tabular":
        return _tabular_row(spec, preprocessor, rng)
    raise OmnifuseError(
        f"input {spec.name!r} has modality {spec.modality!r}, which ONNX export cannot make sample rows "
        "for; use the torch backend (omnifuse.load(dir))"
    )


def sample_examples(
    specs: list[InputSpec], preprocessors: dict[str, Preprocessor], rows: int, seed: int = 0
) -> list[Example]:
    """``rows`` preprocessed examples; from the third row on, every third row lacks one input in turn.

    Args:
        specs: the model inputs (``omnifuse.data.dataset.input_specs``).
        preprocessors: their fitted preprocessors.
        rows: how many examples.
        seed: seeds the generated cells.
    """
    rng = np.random.default_rng(seed)
    examples = []
    for row in range(rows):
        missing = specs[(row // 3) % len(specs)].name if row >= 2 and row % 3 == 2 else None
        inputs, presence = {}, {}
        for spec in specs:
            pre = preprocessors[spec.name]
            present = spec.name != missing
            inputs[spec.name] = pre(sample_cell(spec, pre, row, rng)) if present else pre.blank()
            presence[spec.name] = present
        examples.append(Example(row, inputs, presence))
    return examples


def _png_bytes(rng: np.random.Generator) -> bytes:
    from PIL import Image

    pixels = rng.integers(0, 256, size=(20, 24, 3), dtype=np.uint8)  # (H, W, 3)
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def _wav_bytes(rng: np.random.Generator, seconds: float, rate: int = 16000) -> bytes:
    import soundfile

    t = np.arange(int(rate * seconds)) / rate
    wave = 0.3 * np.sin(2 * np.pi * rng.uniform(200, 900) * t) + 0.05 * rng.standard_normal(t.size)
    buffer = io.BytesIO()
    soundfile.write(buffer, wave.astype(np.float32), rate, format="WAV")
    return buffer.getvalue()


def _tabular_row(spec: InputSpec, preprocessor: Preprocessor, rng: np.random.Generator) -> dict[str, Any]:
    from omnifuse.data.preprocess.tabular import TabularPreprocessor

    vocab = preprocessor.vocab if isinstance(preprocessor, TabularPreprocessor) else {}
    row: dict[str, Any] = {}
    for column, kind in spec.columns.items():
        if kind == "numeric":
            row[column] = float(rng.normal())
        else:
            choices = [v for v in vocab.get(column, []) if isinstance(v, str)] or ["unseen"]
            row[column] = str(rng.choice(choices))
    return row

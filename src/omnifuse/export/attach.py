"""Running a Predictor's forward passes on onnxruntime: finding (or exporting) the ONNX file and checking
that it was exported from the folder's weights."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from omnifuse.artifacts.folder import WEIGHTS
from omnifuse.artifacts.manifest import MANIFEST
from omnifuse.errors import ConfigError, ExportError
from omnifuse.export.backend import OnnxBackend
from omnifuse.export.onnx import export_to_temp

if TYPE_CHECKING:
    from omnifuse.inference.predictor import Predictor

BACKENDS = ("torch", "onnx")
ONNX_FILE = "model.onnx"


def attach(predictor: Predictor, folder: str | Path, backend: str, onnx_path: str | Path | None) -> None:
    """Makes ``predictor`` run its forward passes on onnxruntime (``backend="onnx"``).

    Uses ``onnx_path``, else ``folder/model.onnx`` (written by ``omnifuse export --out DIR/model.onnx``),
    else exports to a temporary file (with a warning: it takes seconds; export once instead).
    ``explain`` and ``embed(column=...)`` still run on the torch model, which stays loaded.

    Raises:
        ConfigError: an unknown backend. ExportError: the ONNX file was exported from other weights than
            the folder's, or the model cannot be exported.
    """
    if backend not in BACKENDS:
        raise ConfigError([f"backend {backend!r} is not one of {', '.join(BACKENDS)}; pass backend='onnx'"])
    if backend == "torch":
        return
    path = Path(onnx_path) if onnx_path is not None else Path(folder) / ONNX_FILE
    if onnx_path is None and not path.is_file():
        warnings.warn(
            f"{path} does not exist: exporting the model to a temporary ONNX file now (seconds to a minute); "
            f"export it once with: omnifuse export --model {folder} --format onnx --out {path}",
            stacklevel=3,
        )
        path = export_to_temp(folder)
    elif not path.is_file():
        raise ExportError(f"ONNX file {str(path)!r} does not exist; write it with: omnifuse export --model "
                          f"{folder} --format onnx --out {path}")
    onnx = OnnxBackend(path)
    check_weights(onnx, Path(folder))
    predictor.onnx_backend = onnx
    predictor.warm_up()


def check_weights(onnx: OnnxBackend, folder: Path) -> None:
    """Raises ExportError when the ONNX file was exported from other weights than ``folder``'s."""
    # load_model has just checked the weights against manifest.json: its sha256 is theirs, no re-hashing.
    weights = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))["files"][WEIGHTS]["sha256"]
    exported = onnx.signature.weights_sha256
    if exported and exported != weights:
        raise ExportError(
            f"{onnx.path} was exported from other weights than {folder / WEIGHTS} (the model was re-trained "
            f"or the files come from different folders); re-export it: omnifuse export --model {folder} "
            f"--format onnx --out {onnx.path}"
        )

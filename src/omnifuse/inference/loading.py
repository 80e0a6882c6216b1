"""``omnifuse.load``: any model folder, an ensemble (``--preset best``) included."""

from __future__ import annotations

from pathlib import Path

from omnifuse.ensemble.layout import is_ensemble, single_model_only
from omnifuse.errors import ModelDirError
from omnifuse.inference import predictor


def load(
    folder: str | Path, device: str | None = None, backend: str = "torch", onnx_path: str | Path | None = None
) -> predictor.Predictor:
    """Loads a model folder written by ``omnifuse train`` (no network needed).

    Args:
        folder: the model folder; an ensemble folder (ensemble.json) loads as an ``EnsemblePredictor``.
        device: e.g. "cpu" or "cuda"; default: CUDA when available, else CPU.
        backend: "torch", or "onnx" (not for ensembles): see ``omnifuse.inference.predictor.load``.
        onnx_path: the .onnx file for ``backend="onnx"``.

    Raises:
        ModelDirError: the folder is incomplete, tampered with or from an incompatible version; or
            ``backend="onnx"`` with an ensemble.
    """
    if is_ensemble(folder):
        if backend != "torch":
            raise ModelDirError(f"backend {backend!r}: {single_model_only(folder)}")
        from omnifuse.ensemble.predictor import load_ensemble

        return load_ensemble(folder, device)
    return predictor.load(folder, device, backend, onnx_path)

"""The sidecar of an exported ONNX model (``FILE.onnx.json``): how to feed the graph, what it came from;
and the padding that the exporter and the runtime agree on."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from omnifuse.errors import ExportError
from omnifuse.version import __version__

DEFAULT_OPSET = 18
EXPORT_HINT = "pip install 'omnifuse[export]'"
OUTPUTS = ("logits", "fused_embedding")
SIGNATURE_FORMAT = 1


@dataclass
class OnnxInput:
    """One graph input: its ONNX name, where it goes in the batch, dtype and axes (ints or axis names)."""

    name: str
    input: str
    tensor: str
    dtype: str
    shape: list[int | str]


@dataclass
class Signature:
    """The sidecar of an exported model: how to feed the graph and what it was exported from.

    Attributes:
        inputs: the tensor inputs, in graph order.
        presence: {model input: ONNX name of its (B,) bool presence input}.
        outputs: ONNX output names (logits, embedding).
        opset: the ONNX opset.
        exporter: "dynamo" or "torchscript".
        min_lengths: {ONNX name: the shortest sequence the graph accepts}; the backend pads shorter
            batches with masked positions (encoders ignore those).
        weights_sha256: sha256 of the model.safetensors it was exported from ("" for an in-memory model).
        parity: the largest |onnxruntime - torch| logit difference measured after export.
    """

    inputs: list[OnnxInput]
    presence: dict[str, str]
    outputs: list[str] = field(default_factory=lambda: list(OUTPUTS))
    opset: int = DEFAULT_OPSET
    exporter: str = "dynamo"
    min_lengths: dict[str, int] = field(default_factory=dict)
    weights_sha256: str = ""
    parity: float = 0.0
    omnifuse_version: str = __version__
    format: int = SIGNATURE_FORMAT

    def save(self, path: Path) -> None:
        """Writes the JSON sidecar."""
        path.write_text(json.dumps(asdict(self), indent=2), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Signature:
        """Reads a sidecar written by ``save``.

        Raises:
            ExportError: missing, not JSON, or of another format.
        """
        fix = "re-export it: omnifuse export --model DIR --format onnx --out FILE.onnx"
        if not path.is_file():
            raise ExportError(f"{path} is missing (the ONNX model's input description); {fix}")
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            if raw.get("format") != SIGNATURE_FORMAT:
                raise ValueError(f"format {raw.get('format')!r}, expected {SIGNATURE_FORMAT}")
            raw["inputs"] = [OnnxInput(**entry) for entry in raw["inputs"]]
            return cls(**raw)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise ExportError(f"{path} is not a valid ONNX signature ({exc}); {fix}") from None


def sidecar_path(onnx_path: Path) -> Path:
    """``FILE.onnx`` -> ``FILE.onnx.json``."""
    return onnx_path.with_name(onnx_path.name + ".json")


def pad_length(tensor: Tensor, length: int) -> Tensor:
    """Zero-pads dim 1 of (B, T, ...) up to ``length`` (as collate pads shorter rows)."""
    extra = length - tensor.shape[1]
    if extra <= 0:
        return tensor
    pad = tensor.new_zeros((tensor.shape[0], extra, *tensor.shape[2:]))  # (B, extra, ...)
    return torch.cat([tensor, pad], dim=1)  # (B, length, ...)

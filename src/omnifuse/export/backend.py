"""Runs an exported ONNX model with onnxruntime on the CPU, fed with collated batches."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from omnifuse.data.collate import Batch, Example, batches
from omnifuse.errors import ExportError, MissingExtraError
from omnifuse.export.signature import EXPORT_HINT, OUTPUTS, Signature, pad_length, sidecar_path

MAX_THREADS = 4  # more intra-op threads only add synchronisation cost for the small per-row graphs


def default_threads() -> int:
    """Intra-op threads: the CPUs this process may use, at most ``MAX_THREADS``."""
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        available = os.cpu_count() or 1
    return max(1, min(MAX_THREADS, available))


class OnnxBackend:
    """An onnxruntime session over an exported model, taking the same batches as the torch model.

    Args:
        path: the .onnx file; its sidecar ``.onnx.json`` is read unless ``signature`` is given.
        signature: the graph's signature (``omnifuse.export.onnx.Signature``).
        threads: intra-op threads (default ``default_threads()``); inter-op runs sequentially.

    Raises:
        MissingExtraError: onnxruntime is not installed (names the extra). ExportError: the sidecar is missing
            or does not match the graph's inputs.
    """

    def __init__(
        self, path: str | Path, signature: Signature | None = None, threads: int | None = None
    ) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise MissingExtraError(f"the ONNX backend needs onnxruntime: {EXPORT_HINT}") from None
        self.path = Path(path)
        self.signature = signature or Signature.load(sidecar_path(self.path))
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or default_threads()
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only
        self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        self.graph_inputs = self._check_inputs()

    def _check_inputs(self) -> set[str]:
        """The graph's input names; the exporter drops inputs the model never reads, so only names the
        sidecar does not describe are an error."""
        described = [s.name for s in self.signature.inputs] + list(self.signature.presence.values())
        found = [i.name for i in self.session.get_inputs()]
        if set(found) - set(described):
            raise ExportError(
                f"{self.path} takes inputs {found} but its sidecar {sidecar_path(self.path).name} "
                f"describes {described}; the files do not belong together: re-export the model"
            )
        return set(found)

    def feeds(self, batch: Batch) -> dict[str, np.ndarray]:
        """The session's input dict for ``batch`` (sequences padded to the graph's minimum length)."""
        feeds = {}
        for spec in self.signature.inputs:
            if spec.name not in self.graph_inputs:
                continue
            tensor = batch.inputs[spec.input][spec.tensor]
            shortest = self.signature.min_lengths.get(spec.name, 0)
            feeds[spec.name] = pad_length(tensor, shortest).cpu().numpy()  # masked padding: no effect
        for name, onnx_name in self.signature.presence.items():
            if onnx_name in self.graph_inputs:
                feeds[onnx_name] = batch.presence[name].cpu().numpy()
        return feeds

    def run_batch(self, batch: Batch) -> tuple[np.ndarray, np.ndarray]:
        """(logits (B, C), embedding (B, F)) as float32 arrays.

        Raises:
            RuntimeError: onnxruntime failed on the batch (its own exception types derive from Exception
                only; this names the file and the fix).
        """
        try:
            logits, embedding = self.session.run(list(OUTPUTS), self.feeds(batch))
        except Exception as exc:  # onnxruntime's Fail / InvalidArgument / ...: no common base class
            reason = " ".join(str(exc).split())  # one line
            raise ExportError(
                f"onnxruntime failed to run {self.path} ({type(exc).__name__}: {reason}); re-export the "
                "model, or load it with the torch backend"
            ) from exc
        return np.asarray(logits, dtype=np.float32), np.asarray(embedding, dtype=np.float32)

    def run_examples(self, examples: list[Example], batch_size: int, embed: bool = False) -> Tensor:
        """Logits (N, C), or embeddings (N, F) with ``embed``, for prepared examples, in order."""
        parts = []
        for batch in batches(examples, batch_size):
            logits, embedding = self.run_batch(batch)
            parts.append(torch.from_numpy(embedding if embed else logits))
        return parts[0] if len(parts) == 1 else torch.cat(parts)

"""ONNX export of a whole MultimodalModel (encoders + fusion + head) taking preprocessed tensors.

The graph's inputs are the collated batch flattened: one ONNX input per (model input, tensor name), in
sorted order, then one bool ``presence__<input>`` per model input. Its outputs are ``logits`` (B, C) and
``embedding`` (B, F), the fused representation. The batch axis is dynamic, and so is the sequence axis of
every tensor whose per-row length varies (text tokens, audio frames); fixed-size tensors (image pixels,
tabular columns, Whisper's 30 s feature grid) keep their size. The mapping from ONNX names back to
(input, tensor name) is in a JSON sidecar ``FILE.onnx.json`` (see ``Signature``).

Exporter: ``torch.onnx.export(dynamo=True)`` (torch.export + onnxscript) first, the TorchScript exporter
(``dynamo=False``) when that fails; then ``onnx.checker`` and a parity check against torch with another
batch size than the traced one (so the dynamic batch axis is proven), missing inputs included.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import logging
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from omnifuse.data.collate import Batch, Example, collate
from omnifuse.data.preprocess.base import Preprocessor
from omnifuse.encoders.base import InputSpec
from omnifuse.errors import ExportError, MissingExtraError
from omnifuse.export.backend import OnnxBackend
from omnifuse.export.samples import sample_examples
from omnifuse.export.signature import (  # noqa: F401  (re-exported: part of this module's API)
    DEFAULT_OPSET,
    EXPORT_HINT,
    OUTPUTS,
    OnnxInput,
    Signature,
    pad_length,
    sidecar_path,
)
from omnifuse.model import MultimodalModel

PARITY_ATOL = 1e-4
TORCH_BACKEND = "use the torch backend instead: omnifuse.load(dir) (the default)"
# Encoders whose forward torch.export and the TorchScript tracer cannot follow: the exported graph would be
# wrong for other inputs than the traced ones, so they are refused before exporting.
PACKED = (
    "its LSTM runs on packed sequences (pack_padded_sequence), whose per-row lengths the exporters bake "
    "in from the traced batch"
)
UNEXPORTABLE_ENCODERS = {"bilstm": PACKED, "mel_lstm": PACKED}
# Sequence axes of the traced batch are zero-padded (masked) to at least this prime length: a prime is a
# multiple of no stride or frame-stacking factor, so "pad to a multiple of k" branches are traced taken
# (their general form), and it is above the widest usual convolution kernel.
TRACE_LENGTH = 37


class FlatModel(nn.Module):
    """The model with flat positional tensor inputs, as an ONNX graph has them.

    Args:
        model: the model to wrap.
        layout: (input name, tensor name) of each tensor argument, in order.
        names: the model inputs whose (B,) presence masks follow the tensors, in order.
    """

    def __init__(self, model: MultimodalModel, layout: list[tuple[str, str]], names: list[str]) -> None:
        super().__init__()
        self.model, self.layout, self.names = model, layout, names

    def forward(self, *tensors: Tensor) -> tuple[Tensor, Tensor]:
        """(logits (B, C), embedding (B, F)) from the flattened batch."""
        inputs: dict[str, dict[str, Tensor]] = {name: {} for name in self.names}
        for (name, key), tensor in zip(self.layout, tensors, strict=False):
            inputs[name][key] = tensor
        presence = dict(zip(self.names, tensors[len(self.layout) :], strict=True))
        return logits_and_embedding(self.model, inputs, presence)


def logits_and_embedding(model: MultimodalModel, inputs: dict[str, dict[str, Tensor]],
                         presence: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
    """(logits (B, C), fused embedding (B, F)) from one encoder pass, as ``model`` computes them in eval
    mode (the gate and the linear read-out applied)."""
    encoded = model.encode(inputs)
    gated = model.gated(encoded, presence)
    return model.decide(inputs, encoded, gated), model.fusion(encoded, gated)


def graph_inputs(examples: list[Example]) -> tuple[list[OnnxInput], dict[str, str]]:
    """The graph's tensor inputs and presence names for batches of these examples.

    A tensor's dim 0 (dim 1 once batched) is a sequence axis when the examples' lengths differ there.
    """
    first, used, specs = examples[0], set[str](), []
    for name in sorted(first.inputs):
        length_axis = _unique(f"{name}__length", used)  # one per input: collate pads its tensors together
        for key in sorted(first.inputs[name]):
            onnx_name = _unique(f"{name}__{key}", used)
            lengths = {ex.inputs[name][key].shape[0] for ex in examples if ex.presence[name]}
            tensor = first.inputs[name][key]
            shape: list[int | str] = ["batch", *tensor.shape]
            if len(lengths) > 1:
                shape[1] = length_axis
            specs.append(OnnxInput(onnx_name, name, key, str(tensor.dtype).removeprefix("torch."), shape))
    presence = {name: _unique(f"presence__{name}", used) for name in sorted(first.inputs)}
    return specs, presence


def _unique(raw: str, used: set[str]) -> str:
    name = re.sub(r"[^A-Za-z0-9_]", "_", raw)
    while name in used:
        name += "_"
    used.add(name)
    return name


def flatten(batch: Batch, signature: Signature) -> tuple[Tensor, ...]:
    """The batch's tensors in graph order: every OnnxInput, then the presence masks."""
    tensors = [batch.inputs[spec.input][spec.tensor] for spec in signature.inputs]
    return (*tensors, *(batch.presence[name] for name in signature.presence))


def export_model(
    model: MultimodalModel,
    specs: list[InputSpec],
    preprocessors: dict[str, Preprocessor],
    encoder_names: dict[str, str],
    out: Path,
    *,
    opset: int = DEFAULT_OPSET,
    batch: int = 3,
) -> Signature:
    """Exports an in-memory model to ``out`` (+ sidecar) and checks parity; see the module docstring.

    Args:
        model: the model (put in eval mode).
        specs: its inputs (``input_specs(config)``).
        preprocessors: their fitted preprocessors (they make the sample batch).
        encoder_names: {input name: registered encoder name}, for the error messages.
        out: the .onnx path to write.
        opset: the ONNX opset.
        batch: rows of the traced sample batch (>= 2; the parity batch has two more).

    Returns:
        The signature, also written to ``sidecar_path(out)``.

    Raises:
        ExportError: an encoder that cannot be exported, or both exporters failed, or the parity check
            found a difference above 1e-4.
        MissingExtraError: onnx / onnxruntime / onnxscript are not installed (the message names the extra).
    """
    check_exportable(encoder_names)
    _import_onnx()
    model.eval()
    examples = sample_examples(specs, preprocessors, max(batch, 2) + 2, seed=0)
    inputs, presence = graph_inputs(examples)
    signature = Signature(inputs, presence, opset=opset)
    trace = trace_batch(examples[: max(batch, 2)], signature)
    signature.exporter = _export(model, trace, signature, out, encoder_names)
    # Other rows than the traced ones, in another order: a value baked in from the traced batch shows.
    check = sample_examples(specs, preprocessors, max(batch, 2) + 2, seed=1)
    signature.parity = measure_parity(model, out, signature, collate(check[1:] + check[:1]))
    if not signature.parity <= PARITY_ATOL:  # also catches NaN
        raise ExportError(
            f"the ONNX export of {_describe(encoder_names)} differs from torch by {signature.parity:.2e} "
            f"(more than {PARITY_ATOL:g}) on a sample batch; {TORCH_BACKEND}"
        )
    signature.save(sidecar_path(out))
    return signature


def trace_batch(examples: list[Example], signature: Signature) -> Batch:
    """The batch to trace: every row present, sequence axes zero-padded (masked) to a prime length."""
    batch = collate([Example(ex.index, ex.inputs, {n: True for n in ex.presence}) for ex in examples])
    for spec in signature.inputs:
        if len(spec.shape) > 1 and isinstance(spec.shape[1], str):
            tensor = batch.inputs[spec.input][spec.tensor]
            length = _next_prime(max(TRACE_LENGTH, tensor.shape[1]))
            batch.inputs[spec.input][spec.tensor] = pad_length(tensor, length)
    return batch


def _next_prime(n: int) -> int:
    while any(n % d == 0 for d in range(2, int(n**0.5) + 1)):
        n += 1
    return n


def check_exportable(encoder_names: dict[str, str]) -> None:
    """Raises ExportError up front for an encoder known not to export (names input, encoder, reason)."""
    for name, encoder in sorted(encoder_names.items()):
        if encoder in UNEXPORTABLE_ENCODERS:
            raise ExportError(
                f"input {name!r} uses encoder {encoder!r}, which cannot be exported to ONNX: "
                f"{UNEXPORTABLE_ENCODERS[encoder]}; {TORCH_BACKEND}"
            )


def _describe(encoder_names: dict[str, str]) -> str:
    parts = ", ".join(f"{n}={e}" for n, e in sorted(encoder_names.items()))
    return f"the model ({parts})"


def _import_onnx() -> Any:
    try:
        import onnx
        import onnxruntime  # noqa: F401
    except ImportError:
        raise MissingExtraError(f"ONNX export needs onnx and onnxruntime: {EXPORT_HINT}") from None
    return onnx


def _export(
    model: MultimodalModel, batch: Batch, signature: Signature, out: Path, encoder_names: dict[str, str]
) -> str:
    """Writes ``out`` with the dynamo exporter, else the TorchScript one; returns which worked."""
    flat = FlatModel(model, [(s.input, s.tensor) for s in signature.inputs], list(signature.presence))
    args = flatten(batch, signature)
    errors = []
    for exporter in ("dynamo", "torchscript"):
        try:
            signature.min_lengths = _run_exporter(flat, args, signature, out, exporter)
            _import_onnx().checker.check_model(str(out), full_check=True)
            return exporter
        except Exception as exc:  # exporters raise many error types; both failing is reported below
            errors.append(f"{exporter}: {type(exc).__name__}: {str(exc).strip().splitlines()[0][:300]}")
    raise ExportError(
        f"cannot export {_describe(encoder_names)} to ONNX ({'; '.join(errors)}); {TORCH_BACKEND}"
    )


def _run_exporter(
    flat: FlatModel, args: tuple[Tensor, ...], signature: Signature, out: Path, how: str
) -> dict[str, int]:
    """Runs one exporter; returns {ONNX input: shortest length} where the graph needs a minimum length."""
    names = [s.name for s in signature.inputs] + list(signature.presence.values())
    axes = _axes(signature)
    with quiet(), torch.no_grad():
        if how == "torchscript":
            torch.onnx.export(
                flat, args, str(out), dynamo=False, opset_version=signature.opset, input_names=names,
                output_names=list(OUTPUTS), dynamic_axes={**axes, **{o: {0: "batch"} for o in OUTPUTS}},
            )
            return {}
        from torch.export import Dim

        # DYNAMIC, not AUTO: an axis the model specialises to a constant fails here instead of at run time.
        shapes = tuple({i: Dim.DYNAMIC for i in axes[n]} for n in names)
        program = torch.onnx.export(
            flat, args, str(out), dynamo=True, opset_version=signature.opset, input_names=names,
            output_names=list(OUTPUTS), dynamic_shapes=(shapes,), external_data=False, optimize=True,
            verbose=False,
        )
    assert program is not None and program.exported_program is not None
    return _min_lengths(program.exported_program, signature)


def _min_lengths(exported: Any, signature: Signature) -> dict[str, int]:
    """Sequence axes that torch.export found a lower bound above 1 for (e.g. TextCNN's widest kernel)."""
    ranges = {str(sym): int(r.lower) for sym, r in exported.range_constraints.items()}
    nodes = {n.name: n for n in exported.graph.nodes if n.op == "placeholder"}
    user_inputs = [nodes[name] for name in exported.graph_signature.user_inputs]
    found = {}
    for spec, node in zip(signature.inputs, user_inputs, strict=False):
        if len(spec.shape) > 1 and isinstance(spec.shape[1], str):
            # torch.export assumes sizes >= 2 (sizes 0 and 1 are special-cased); padding is masked, so
            # the backend pads shorter batches rather than trusting the graph with length 1.
            found[spec.name] = max(2, ranges.get(str(node.meta["val"].shape[1]), 2))
    by_axis: dict[str, int] = {}  # tensors of one input share their length axis: pad them alike
    for spec in signature.inputs:
        if spec.name in found:
            by_axis[str(spec.shape[1])] = max(by_axis.get(str(spec.shape[1]), 2), found[spec.name])
    return {spec.name: by_axis[str(spec.shape[1])] for spec in signature.inputs if spec.name in found}


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silences the exporters' progress prints, warnings and log lines (errors still raise)."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "onnxscript", "onnx_ir", "torch.export")]
    levels = [logger.level for logger in loggers]
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels, strict=True):
                logger.setLevel(level)


def _axes(signature: Signature) -> dict[str, dict[int, str]]:
    """{ONNX input name: {axis: axis name}} for the dynamic axes."""
    axes = {s.name: {i: a for i, a in enumerate(s.shape) if isinstance(a, str)} for s in signature.inputs}
    return {**axes, **{name: {0: "batch"} for name in signature.presence.values()}}


def measure_parity(model: MultimodalModel, path: Path, signature: Signature, batch: Batch) -> float:
    """The largest |onnxruntime - torch| difference over logits and embeddings on ``batch``."""
    backend = OnnxBackend(path, signature, threads=1)
    with torch.inference_mode():
        want_logits, want = logits_and_embedding(model, batch.inputs, batch.presence)
    logits, embedding = backend.run_batch(batch)
    diffs = [np.abs(logits - want_logits.numpy()).max(), np.abs(embedding - want.numpy()).max()]
    return float(max(diffs))


def export_onnx(
    model_dir: str | Path, out_path: str | Path, *, opset: int = DEFAULT_OPSET, batch: int = 3
) -> Signature:
    """Exports a saved model folder to ONNX; see ``export_model``.

    Args:
        model_dir: a folder written by ``omnifuse train``.
        out_path: the .onnx file to write (its sidecar ``.onnx.json`` goes next to it).
        opset: the ONNX opset.
        batch: rows of the traced sample batch.

    Raises:
        ModelDirError: the folder cannot be loaded. ExportError: see ``export_model``.
    """
    from omnifuse.artifacts.folder import WEIGHTS, load_model
    from omnifuse.artifacts.manifest import file_digest
    from omnifuse.data.dataset import input_specs

    loaded = load_model(model_dir)
    if loaded.task.name == "contrastive":
        raise ExportError(
            f"{model_dir} is a contrastive (embedding) model, which ONNX export does not cover (it embeds "
            f"one column at a time); {TORCH_BACKEND}"
        )
    if loaded.task.name == "generation":
        raise ExportError(f"{model_dir} is a generation model, which ONNX export does not cover yet (it "
                          f"writes token by token with a cache); {TORCH_BACKEND}")
    specs = input_specs(loaded.config)
    encoders = {spec.name: loaded.config.encoder_of(spec.name).name for spec in specs}
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial.onnx")  # a failed export never replaces a good one
    try:
        signature = export_model(
            loaded.model, specs, loaded.preprocessors, encoders, partial, opset=opset, batch=batch
        )
        signature.weights_sha256 = file_digest(Path(model_dir) / WEIGHTS)
        signature.save(sidecar_path(partial))
        os.replace(partial, out)
        os.replace(sidecar_path(partial), sidecar_path(out))
    finally:
        partial.unlink(missing_ok=True)
        sidecar_path(partial).unlink(missing_ok=True)
    return signature


def export_to_temp(model_dir: str | Path) -> Path:
    """Exports a model folder to a new temporary directory; returns the .onnx path."""
    folder = Path(tempfile.mkdtemp(prefix="omnifuse-onnx-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)  # the session holds the graph in memory
    out = folder / "model.onnx"
    export_onnx(model_dir, out)
    return out

"""ONNX export: parity with torch over every fusion and the exportable encoders, dynamic axes, errors."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from torch import Tensor, nn

import omnifuse.catalog  # noqa: F401  (fills the registries)
from omnifuse.data.collate import Example, collate
from omnifuse.data.preprocess.text import VocabTextPreprocessor
from omnifuse.encoders.base import ENCODERS, Encoder, EncoderOutput, InputSpec
from omnifuse.errors import OmnifuseError
from omnifuse.export.backend import OnnxBackend
from omnifuse.export.onnx import (
    UNEXPORTABLE_ENCODERS,
    ExportError,
    Signature,
    export_model,
    export_onnx,
    pad_length,
    sidecar_path,
)
from omnifuse.export.samples import sample_cell, sample_examples
from omnifuse.fusion.base import FUSIONS
from omnifuse.heads.base import Head
from omnifuse.model import MultimodalModel

ATOL = 1e-4


def _torch_outputs(
    model: MultimodalModel, examples: list[Example], signature: Signature
) -> tuple[np.ndarray, np.ndarray]:
    """Torch's (logits, fused) on the batch as the backend feeds it: sequences shorter than the graph's
    minimum length padded with masked positions (wav2vec2 cannot run on a 1-sample blank at all)."""
    batch = collate(examples)
    for spec in signature.inputs:
        tensor = batch.inputs[spec.input][spec.tensor]
        batch.inputs[spec.input][spec.tensor] = pad_length(tensor, signature.min_lengths.get(spec.name, 0))
    with torch.inference_mode():
        fused = model.embed(batch.inputs, batch.presence)  # (B, F)
        return model.head(fused).numpy(), fused.numpy()


def assert_parity(tiny: Any, path: Path) -> None:
    """ONNX and torch agree on batches of other sizes than the traced one (3): 6 rows with inputs
    missing in turn, one row, and one row whose every input is missing (all sequences of length 1)."""
    backend = OnnxBackend(path, threads=1)
    rows = sample_examples(tiny.specs, tiny.preprocessors, 6, seed=7)
    pres = tiny.preprocessors
    blank = Example(0, {n: p.blank() for n, p in pres.items()}, {n: False for n in pres})
    assert any(not p for ex in rows for p in ex.presence.values()), "the batch should miss some inputs"
    for examples in (rows, rows[:1], [blank]):
        want_logits, want_fused = _torch_outputs(tiny.model, examples, backend.signature)
        logits, fused = backend.run_batch(collate(examples))
        assert logits.shape == want_logits.shape
        np.testing.assert_allclose(logits, want_logits, atol=ATOL, rtol=0)
        np.testing.assert_allclose(fused, want_fused, atol=ATOL, rtol=0)


@pytest.mark.parametrize("fusion", FUSIONS.names())
def test_every_fusion_exports_with_parity(
    fusion: str, fusion_model: Callable[..., Any], tmp_path: Path
) -> None:
    tiny = fusion_model(fusion)
    out = tmp_path / "model.onnx"
    signature = export_model(tiny.model, tiny.specs, tiny.preprocessors, tiny.encoders, out)
    assert signature.exporter == "dynamo"
    assert signature.parity <= ATOL
    shapes = {s.name: s.shape for s in signature.inputs}
    assert shapes["photo__pixels"] == ["batch", 1, 8, 8]  # fixed size: only the batch axis is dynamic
    assert shapes["tabular__numeric"] == ["batch", 1]
    assert signature.presence == {"photo": "presence__photo", "tabular": "presence__tabular"}
    assert_parity(tiny, out)


def test_token_fusion_with_ragged_audio_frames(fusion_model: Callable[..., Any], tmp_path: Path) -> None:
    tiny = fusion_model("transformer", sound=True)
    out = tmp_path / "model.onnx"
    signature = export_model(tiny.model, tiny.specs, tiny.preprocessors, tiny.encoders, out)
    shapes = {s.tensor: s.shape for s in signature.inputs if s.input == "sound"}
    assert shapes["mel"] == ["batch", "sound__length", 8] and shapes["mask"] == ["batch", "sound__length"]
    assert signature.min_lengths == {"sound__mask": 2, "sound__mel": 2}
    assert_parity(tiny, out)


SLOW = "exports a whole backbone (8-20 s); the default run covers bow, small_cnn, mel_cnn, tabular_mlp " \
       "through the trained integration model and textcnn/mel_cnn here"
ENCODER_CASES: dict[str, Callable[[dict[str, str]], tuple[str, dict[str, Any]]]] = {
    "textcnn": lambda hf: ("text", {"name": "textcnn", "embed_dim": 8, "num_filters": 3,
                                    "kernel_sizes": [2, 5]}),
    "mel_cnn": lambda hf: ("audio", {"name": "mel_cnn", "n_mels": 8, "channels": 4, "num_blocks": 2,
                                     "output_dim": 8}),
    "mfcc_stats": lambda hf: ("audio", {"name": "mfcc_stats", "n_mels": 8, "n_mfcc": 4, "segments": 2,
                                        "hidden_dim": 8, "output_dim": 8}),
    "bow": lambda hf: ("text", {"name": "bow", "embed_dim": 8}),
    "lm_prompt": lambda hf: ("text", {"name": "lm_prompt", "max_tokens": 6}),
    "tfidf": lambda hf: ("text", {"name": "tfidf", "embed_dim": 8, "min_df": 1}),
    "small_cnn": lambda hf: ("image", {"name": "small_cnn", "size": 16, "widths": [4, 8]}),
    "tabular_mlp": lambda hf: ("tabular", {"name": "tabular_mlp", "embed_dim": 4, "hidden_dim": 8}),
    "hf_text": lambda hf: ("text", {"name": "hf_text", "model": hf["bert"], "max_length": 8}),
    "hf_image": lambda hf: ("image", {"name": "hf_image", "model": hf["vit"]}),
    "efficientnet_lite0": lambda hf: ("image", {"name": "efficientnet_lite0", "size": 32,
                                                "pretrained": False}),
    "hf_audio": lambda hf: ("audio", {"name": "hf_audio", "model": hf["wav2vec2"], "max_seconds": 1.0}),
}
# a minimum-length graph (widest kernel), stride padding, and the default audio encoder
DEFAULT_RUN = {"textcnn", "mel_cnn", "mfcc_stats"}


def test_every_encoder_is_either_swept_or_refused() -> None:
    assert set(ENCODER_CASES) | set(UNEXPORTABLE_ENCODERS) == set(ENCODERS.names())
    assert not set(ENCODER_CASES) & set(UNEXPORTABLE_ENCODERS)


@pytest.mark.parametrize(
    "encoder",
    [e if e in DEFAULT_RUN else pytest.param(e, marks=pytest.mark.slow(reason=SLOW)) for e in ENCODER_CASES],
)
def test_exportable_encoder_has_parity(
    encoder: str, tiny: Callable[..., Any], request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    hf = request.getfixturevalue("hf_folders") if encoder.startswith("hf_") else {}
    modality, options = ENCODER_CASES[encoder](hf)
    if modality == "tabular":
        model = tiny({"w": {"type": "numeric"}, "c": {"type": "categorical"}}, tabular=options)
    else:
        model = tiny({"x": {"type": modality, "encoder": options}, "w": {"type": "numeric"}})
    out = tmp_path / "model.onnx"
    signature = export_model(model.model, model.specs, model.preprocessors, model.encoders, out)
    assert signature.parity <= ATOL
    if encoder == "textcnn":  # the widest kernel (5): shorter texts are padded by the backend
        assert signature.min_lengths == {"x__attention_mask": 5, "x__input_ids": 5}
    assert_parity(model, out)


@pytest.mark.parametrize("encoder", sorted(UNEXPORTABLE_ENCODERS))
def test_unexportable_encoder_is_refused_up_front(
    encoder: str, tiny: Callable[..., Any], tmp_path: Path
) -> None:
    options = {"name": encoder, "hidden_dim": 4}
    modality = ENCODERS.get(encoder).modality
    model = tiny({"x": {"type": modality, "encoder": options}, "w": {"type": "numeric"}})
    with pytest.raises(ExportError, match=rf"input 'x' uses encoder '{encoder}', which cannot be exported to "
                       r"ONNX: its LSTM runs on packed sequences .*use the torch backend instead"):
        export_model(model.model, model.specs, model.preprocessors, model.encoders, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


class _DataDependent(Encoder):
    """A stand-in encoder that crops its batch to the first row's length: untraceable in general."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(50, 4)
        self.output_dim = 4

    def forward(self, inputs: dict[str, Tensor]) -> EncoderOutput:
        keep = int(inputs["attention_mask"][0].sum())  # a Python int read from the data
        return EncoderOutput(self.embed(inputs["input_ids"][:, :keep]).mean(dim=1))  # (B, 4)


def test_exporter_failure_or_mismatch_is_a_clear_error(tmp_path: Path) -> None:
    pre = VocabTextPreprocessor()
    spec = InputSpec("x", "text", {"x": "text"})
    rng = np.random.default_rng(0)
    pre.fit([sample_cell(spec, pre, row, rng) for row in range(6)])
    encoder = _DataDependent()
    spec_fusion = FUSIONS.get("concat")
    fusion = spec_fusion.build(spec_fusion.options(), {"x": 4})
    model = MultimodalModel({"x": encoder}, fusion, Head(fusion.output_dim, 2, 8, 0.0)).eval()
    with pytest.raises(ExportError, match=r"(cannot export|export of) the model \(x=custom\).*use the torch "
                       r"backend instead: omnifuse.load\(dir\)"):
        export_model(model, [spec], {"x": pre}, {"x": "custom"}, tmp_path / "m.onnx")


def test_signature_round_trip_and_bad_sidecars(tmp_path: Path) -> None:
    path = tmp_path / "m.onnx.json"
    signature = Signature([], {"x": "presence__x"}, min_lengths={"a": 3}, parity=1e-7)
    signature.save(path)
    assert Signature.load(path) == signature
    with pytest.raises(ExportError, match=r"nope.onnx.json is missing .*re-export it: omnifuse export"):
        Signature.load(tmp_path / "nope.onnx.json")
    path.write_text(json.dumps({**json.loads(path.read_text()), "format": 99}))
    with pytest.raises(ExportError, match=r"not a valid ONNX signature \(format 99, expected 1\); re-export"):
        Signature.load(path)
    path.write_text("{not json")
    with pytest.raises(ExportError, match=r"not a valid ONNX signature"):
        Signature.load(path)


def test_backend_errors_name_the_file_and_the_fix(
    fusion_model: Callable[..., Any], tmp_path: Path
) -> None:
    tiny = fusion_model("concat")
    out = tmp_path / "model.onnx"
    export_model(tiny.model, tiny.specs, tiny.preprocessors, tiny.encoders, out)
    batch = collate(sample_examples(tiny.specs, tiny.preprocessors, 2))
    batch.inputs["photo"]["pixels"] = batch.inputs["photo"]["pixels"][:, :, :5]  # (B, 1, 5, 8): wrong size
    with pytest.raises(RuntimeError, match=r"onnxruntime failed to run .*model.onnx \(.*\); re-export the "
                       r"model, or load it with the torch backend"):
        OnnxBackend(out).run_batch(batch)
    signature = Signature.load(sidecar_path(out))
    signature.inputs[0].name = "renamed"  # the graph now has an input the sidecar does not describe
    signature.save(sidecar_path(out))
    with pytest.raises(ExportError, match=r"model.onnx takes inputs .* but its sidecar model.onnx.json "
                       r"describes .*the files do not belong together: re-export the model"):
        OnnxBackend(out)


def test_sample_cells_of_an_unknown_modality_are_refused() -> None:
    spec = InputSpec("clip", "video", {"clip": "video"})
    with pytest.raises(OmnifuseError, match=r"input 'clip' has modality 'video', which ONNX export cannot "
                       r"make sample rows for; use the torch backend"):
        sample_cell(spec, VocabTextPreprocessor(), 0, np.random.default_rng(0))


def test_contrastive_models_are_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import omnifuse.artifacts.folder

    fake = SimpleNamespace(task=SimpleNamespace(name="contrastive"))
    monkeypatch.setattr(omnifuse.artifacts.folder, "load_model", lambda folder: fake)
    with pytest.raises(ExportError, match=r"is a contrastive \(embedding\) model, which ONNX export does not "
                       r"cover .*use the torch backend"):
        export_onnx(tmp_path, tmp_path / "m.onnx")


def test_missing_onnxruntime_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime now raises ImportError
    with pytest.raises(ImportError, match=r"needs onnxruntime: pip install 'omnifuse\[export\]'"):
        OnnxBackend(tmp_path / "m.onnx")

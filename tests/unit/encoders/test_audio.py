"""Audio encoders: mel_cnn, mel_lstm and hf_audio (tiny wav2vec2 / HuBERT / Whisper built from configs)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile
import torch
from torch import Tensor

from omnifuse.encoders import audio
from omnifuse.encoders.audio import downsample_mask, pad_time, pool_tokens
from omnifuse.encoders.base import ENCODERS, Encoder, InputSpec

AUDIO = InputSpec(name="clip", modality="audio", columns={"clip": "audio"})
N_MELS = 16


def build(name: str, assets: Path | None = None, **options: Any) -> Encoder:
    spec = ENCODERS.get(name)
    opts = spec.options(**options)
    return spec.build(opts, spec.make_preprocessor(opts, AUDIO), assets)


def padded_batch(lengths: list[int], width: int) -> dict[str, Tensor]:
    """Random log-mel rows of the given lengths, zero-padded like collate does."""
    mel = torch.zeros(len(lengths), max(lengths), width)
    mask = torch.zeros(len(lengths), max(lengths), dtype=torch.bool)
    for i, n in enumerate(lengths):
        mel[i, :n] = torch.randn(n, width)
        mask[i, :n] = True
    return {"mel": mel, "mask": mask}


def assert_every_parameter_gets_a_gradient(encoder: Encoder, batch: dict[str, Tensor]) -> None:
    encoder.train()
    out = encoder(batch)
    (out.pooled.sum() + out.tokens.sum()).backward()  # type: ignore[union-attr]
    trainable = [(n, p) for n, p in encoder.named_parameters() if p.requires_grad]
    assert trainable
    missing = [n for n, p in trainable if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, f"no gradient for {missing}"


# -- helpers with hand-written expectations ---------------------------------------------------------


def test_pad_time_and_downsample_mask() -> None:
    x, mask = pad_time(torch.ones(1, 5, 2), torch.tensor([[True, True, True, False, False]]), 4)
    assert x.shape == (1, 8, 2) and x[0, 5:].abs().sum() == 0
    assert mask.tolist() == [[True, True, True, False, False, False, False, False]]
    assert downsample_mask(mask, 2).tolist() == [[True, True, False, False]]


def test_pool_tokens() -> None:
    tokens = torch.tensor([[[1.0], [3.0], [100.0]], [[-2.0], [-4.0], [7.0]], [[5.0], [5.0], [5.0]]])
    mask = torch.tensor([[True, True, False], [True, True, False], [False, False, False]])
    assert pool_tokens(tokens, mask, "mean").flatten().tolist() == [2.0, -3.0, 0.0]
    assert pool_tokens(tokens, mask, "max").flatten().tolist() == [3.0, -2.0, 0.0]
    assert pool_tokens(tokens, mask, "cls").flatten().tolist() == [1.0, -2.0, 0.0]


def test_registered_with_documented_defaults() -> None:
    for name in ("mel_cnn", "mel_lstm", "hf_audio"):
        spec = ENCODERS.get(name)
        assert spec.modality == "audio" and spec.summary
        for field in dataclasses.fields(spec.options):
            assert field.default is not dataclasses.MISSING, f"{name}.{field.name} has no default"


# -- mel_cnn / mel_lstm -----------------------------------------------------------------------------


SMALL: dict[str, dict[str, Any]] = {
    "mel_cnn": {"channels": 4, "output_dim": 8},
    "mel_lstm": {"hidden_dim": 4},
}


@pytest.mark.parametrize(
    ("name", "options", "dim", "real_tokens"),
    [
        ("mel_cnn", {"channels": 4, "output_dim": 12, "pooling": "mean"}, 12, [5, 2, 1]),  # ceil(n / 8)
        ("mel_cnn", {"channels": 4, "output_dim": 12, "pooling": "max", "num_blocks": 2}, 12, [10, 3, 1]),
        ("mel_lstm", {"hidden_dim": 6, "num_layers": 2, "stack_frames": 4}, 12, [10, 3, 1]),  # ceil(n / 4)
    ],
)
def test_mel_encoders_honour_the_mask(
    name: str, options: dict[str, Any], dim: int, real_tokens: list[int]
) -> None:
    encoder = build(name, n_mels=N_MELS, **options).eval()
    batch = padded_batch([37, 11, 1], N_MELS)
    with torch.no_grad():
        out = encoder(batch)
        alone = encoder({"mel": batch["mel"][1:2, :11], "mask": batch["mask"][1:2, :11]})
    tokens = real_tokens[0]
    assert encoder.output_dim == dim
    assert out.pooled.shape == (3, dim) and out.tokens is not None and out.tokens.shape == (3, tokens, dim)
    assert out.mask is not None and out.mask.shape == (3, tokens)
    assert out.mask.sum(dim=1).tolist() == real_tokens
    # Padding row 1 with 26 zero frames must not change its pooled vector or its real tokens.
    torch.testing.assert_close(out.pooled[1], alone.pooled[0], atol=1e-5, rtol=1e-5)
    n_real = int(alone.mask.sum())  # type: ignore[union-attr]
    torch.testing.assert_close(out.tokens[1, :n_real], alone.tokens[0, :n_real], atol=1e-5, rtol=1e-5)  # type: ignore[index]
    assert torch.isfinite(out.pooled).all()


@pytest.mark.parametrize("name", ["mel_cnn", "mel_lstm"])
def test_mel_encoders_all_padding_row_and_backward(name: str) -> None:
    encoder = build(name, n_mels=N_MELS, **SMALL[name])
    batch = padded_batch([20, 9], N_MELS)
    blank = {"mel": torch.zeros(1, 20, N_MELS), "mask": torch.zeros(1, 20, dtype=torch.bool)}
    with torch.no_grad():
        out = encoder.eval()({k: torch.cat([batch[k], blank[k]]) for k in batch})
    assert out.pooled[2].abs().sum() == 0  # a missing clip pools to zeros
    assert_every_parameter_gets_a_gradient(encoder, batch)


@pytest.mark.parametrize("name", ["mel_cnn", "mel_lstm"])
def test_mel_encoders_state_round_trip(name: str, tmp_path: Path) -> None:
    encoder = build(name, n_mels=N_MELS, **SMALL[name])
    encoder.train()(padded_batch([12, 7], N_MELS))  # moves the batch-norm statistics
    encoder.save_assets(tmp_path)
    restored = build(name, assets=tmp_path, n_mels=N_MELS, **SMALL[name])
    restored.load_state_dict(encoder.state_dict())
    batch = padded_batch([12, 7], N_MELS)
    torch.testing.assert_close(restored.eval()(batch).pooled, encoder.eval()(batch).pooled)


def test_mel_cnn_from_a_real_file(tmp_path: Path) -> None:
    t = np.arange(8000) / 8000
    soundfile.write(str(tmp_path / "a.wav"), (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 8000)
    spec = ENCODERS.get("mel_cnn")
    opts = spec.options(n_mels=N_MELS, channels=4, output_dim=8)
    row = spec.make_preprocessor(opts, AUDIO)(tmp_path / "a.wav")
    assert row["mel"].shape == (101, N_MELS)
    out = spec.build(opts, spec.make_preprocessor(opts, AUDIO), None)({k: v[None] for k, v in row.items()})
    assert out.pooled.shape == (1, 8) and out.tokens is not None and out.tokens.shape == (1, 13, 8)


# -- hf_audio ---------------------------------------------------------------------------------------

TINY_CONV: dict[str, Any] = {
    "conv_dim": (8, 8),
    "conv_stride": (5, 4),
    "conv_kernel": (10, 4),
    "conv_bias": True,
}
TINY_TRANSFORMER: dict[str, Any] = {
    "hidden_size": 16,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "intermediate_size": 32,
}
TINY_POS: dict[str, Any] = {
    "num_conv_pos_embeddings": 8,
    "num_conv_pos_embedding_groups": 2,
    "vocab_size": 12,
}


@pytest.fixture(scope="module")
def hf_folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny wav2vec2 (layer norm), HuBERT (group norm) and Whisper models with their extractors."""
    from transformers import (
        HubertConfig,
        HubertModel,
        Wav2Vec2Config,
        Wav2Vec2FeatureExtractor,
        Wav2Vec2Model,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperModel,
    )

    torch.manual_seed(0)
    folders = {name: tmp_path_factory.mktemp(name) for name in ("wav2vec2", "hubert", "whisper")}
    w2v = Wav2Vec2Config(**TINY_CONV, **TINY_TRANSFORMER, **TINY_POS, feat_extract_norm="layer")
    Wav2Vec2Model(w2v).save_pretrained(folders["wav2vec2"])
    Wav2Vec2FeatureExtractor(return_attention_mask=True).save_pretrained(folders["wav2vec2"])
    hubert = HubertConfig(**TINY_CONV, **TINY_TRANSFORMER, **TINY_POS, feat_extract_norm="group")
    HubertModel(hubert).save_pretrained(folders["hubert"])
    Wav2Vec2FeatureExtractor(return_attention_mask=False).save_pretrained(folders["hubert"])
    whisper = WhisperConfig(
        d_model=16,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        vocab_size=64,
        max_target_positions=16,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        decoder_start_token_id=1,
    )
    WhisperModel(whisper).save_pretrained(folders["whisper"])
    WhisperFeatureExtractor().save_pretrained(folders["whisper"])
    return folders


def waveform_batch(lengths: list[int]) -> dict[str, Tensor]:
    values = torch.zeros(len(lengths), max(lengths))
    mask = torch.zeros(len(lengths), max(lengths), dtype=torch.bool)
    for i, n in enumerate(lengths):
        values[i, :n] = torch.randn(n)
        mask[i, :n] = True
    return {"input_values": values, "mask": mask}


@pytest.mark.parametrize("kind", ["wav2vec2", "hubert"])
def test_hf_waveform_models_shapes_and_token_mask(kind: str, hf_folders: dict[str, Path]) -> None:
    encoder = build("hf_audio", model=str(hf_folders[kind])).eval()
    with torch.no_grad():
        out = encoder(waveform_batch([3200, 1600]))
    # conv strides 5 * 4: (3200 - 10) // 5 + 1 = 639 -> (639 - 4) // 4 + 1 = 159 frames; 1600 -> 79.
    assert out.tokens is not None and out.tokens.shape == (2, 159, 16) and out.pooled.shape == (2, 16)
    assert out.mask is not None and out.mask.sum(dim=1).tolist() == [159, 79]
    assert encoder.output_dim == 16


def test_hf_layer_norm_model_honours_the_mask(hf_folders: dict[str, Path]) -> None:
    encoder = build("hf_audio", model=str(hf_folders["wav2vec2"])).eval()
    batch = waveform_batch([3200, 1600])
    with torch.no_grad():
        out = encoder(batch)
        alone = encoder({k: v[1:, :1600] for k, v in batch.items()})
    torch.testing.assert_close(out.pooled[1], alone.pooled[0], atol=1e-4, rtol=1e-4)


def test_hf_cls_pooling_and_frozen_feature_encoder(hf_folders: dict[str, Path]) -> None:
    encoder = build("hf_audio", model=str(hf_folders["wav2vec2"]), pooling="cls").eval()
    out = encoder(waveform_batch([800, 800]))
    torch.testing.assert_close(out.pooled, out.tokens[:, 0])  # type: ignore[index]
    backbone: Any = encoder.model
    assert not any(p.requires_grad for p in backbone.feature_extractor.parameters())
    trainable = build("hf_audio", model=str(hf_folders["wav2vec2"]), freeze_feature_encoder=False)
    assert all(p.requires_grad for p in trainable.model.feature_extractor.parameters())  # type: ignore[union-attr]


@pytest.mark.parametrize("kind", ["wav2vec2", "hubert"])
def test_hf_waveform_backward(kind: str, hf_folders: dict[str, Path]) -> None:
    encoder = build("hf_audio", model=str(hf_folders[kind]), freeze_feature_encoder=False)
    assert_every_parameter_gets_a_gradient(encoder, waveform_batch([1600, 1200]))


def test_whisper_encoder_from_a_file(tmp_path: Path, hf_folders: dict[str, Path]) -> None:
    soundfile.write(str(tmp_path / "a.wav"), np.random.rand(8000).astype(np.float32) - 0.5, 16000)
    spec = ENCODERS.get("hf_audio")
    opts = spec.options(model=str(hf_folders["whisper"]))
    pre = spec.make_preprocessor(opts, AUDIO)
    rows = [pre(tmp_path / "a.wav"), pre.blank()]
    batch = {k: torch.stack([row[k] for row in rows]) for k in rows[0]}  # (2, 80, 3000), (2, 3000)
    encoder = spec.build(opts, pre, None)
    assert type(encoder.model).__name__ == "WhisperEncoder"  # type: ignore[union-attr]
    out = encoder(batch)
    assert out.tokens is not None and out.tokens.shape == (2, 1500, 16)
    assert out.mask is not None and out.mask.sum(dim=1).tolist() == [25, 0]  # 0.5 s = 50 frames -> 25
    assert out.pooled[1].abs().sum() == 0
    assert_every_parameter_gets_a_gradient(encoder, batch)


@pytest.mark.parametrize("kind", ["wav2vec2", "whisper"])
def test_hf_assets_and_state_round_trip(kind: str, tmp_path: Path, hf_folders: dict[str, Path]) -> None:
    encoder = build("hf_audio", model=str(hf_folders[kind])).eval()
    encoder.save_assets(tmp_path)
    assert (tmp_path / "config.json").exists()
    restored = build("hf_audio", assets=tmp_path, model="no/such-model-on-this-machine").eval()
    restored.load_state_dict(encoder.state_dict())
    if kind == "whisper":
        batch = {"input_features": torch.randn(1, 80, 3000), "mask": torch.ones(1, 3000, dtype=torch.bool)}
    else:
        batch = waveform_batch([1600])
    with torch.no_grad():
        torch.testing.assert_close(restored(batch).pooled, encoder(batch).pooled)


def test_module_registers_three_encoders() -> None:
    assert {"mel_cnn", "mel_lstm", "hf_audio"} <= set(ENCODERS.names())
    assert audio.HFAudioOptions().pooling == "mean"

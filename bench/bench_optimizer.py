"""The optimizer step: torch's fused AdamW (``training.fused_adamw: true``, the default) against the
per-tensor step torch takes on a CPU otherwise (issue 16).

For each model (a BERT-sized text encoder built from a config, 6 layers of width 384 like the packaged
MiniLM; the packaged EfficientNet-Lite0 architecture at 112 px; ``small_cnn``), both sides build their
optimizer with ``omnifuse.training.optim.make_optimizer`` over the same parameters with random gradients
and time ``step()``, interleaved. The convolutional encoders hold channels-last weights, which stay on
the per-tensor step (see ``make_optimizer``), so their rows show what the fused kernel gains on the rest.

Rows: ``optimizer_step_<model>``: seconds per step, fused / per-tensor (goal <= 0.5 for the text encoder).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from common import BenchResult, Settings, interleaved, median
from torch import nn

NAME = "optimizer_step"


def _bert() -> nn.Module:
    from transformers import BertConfig, BertModel

    return BertModel(BertConfig(hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
                                intermediate_size=1536))


def _efficientnet() -> nn.Module:
    from omnifuse.encoders.image import LITE_MEAN, LITE_STD, EfficientNetLite0, load_efficientnet_lite0

    net = load_efficientnet_lite0(112, False)
    return EfficientNetLite0(net, 0.2, LITE_MEAN, LITE_STD, channels_last=True)


def _small_cnn() -> nn.Module:
    from omnifuse.encoders.image import SmallCNN

    return SmallCNN(1, [32, 64, 128], 0.1, [0.5], [0.25], channels_last=True)


MODELS: dict[str, tuple[Callable[[], nn.Module], str]] = {
    "text_22m": (_bert, "<= 0.5"),
    "efficientnet_lite0": (_efficientnet, ""),
    "small_cnn": (_small_cnn, ""),
}


def _step(model: nn.Module, fused: bool) -> Callable[[], None]:
    from omnifuse.training.optim import make_optimizer, param_groups

    for p in model.parameters():
        p.grad = torch.randn_like(p)
    optimizer = make_optimizer(param_groups(model, 1e-3, 0.01, {}), fused=fused)
    optimizer.step()  # creates the moments
    return optimizer.step


def run(settings: Settings) -> list[BenchResult]:
    """One row per model."""
    results = []
    for name, (make, goal) in MODELS.items():
        if name == "efficientnet_lite0" and not _has_efficientnet():
            continue
        model = make()
        sides = {"fused": _step(model, True), "per_tensor": _step(model, False)}
        samples = interleaved(sides, max(5, settings.repeats * 3), warmup=0)  # _step already warmed up
        seconds = {side: [s.wall for s in values] for side, values in samples.items()}
        med = {side: median(v) for side, v in seconds.items()}
        params = sum(p.numel() for p in model.parameters())
        results.append(BenchResult(f"optimizer_step_{name}", "s/step", med["fused"], med["per_tensor"],
                                   med["fused"] / med["per_tensor"], goal, {"parameters": params,
                                                                            "seconds": seconds},
                                   f"AdamW step over {params / 1e6:.1f}M parameters, fused vs per tensor"))
    return results


def _has_efficientnet() -> bool:
    import importlib.util

    return importlib.util.find_spec("efficientnet_lite_pytorch") is not None

"""AdamW parameter groups (per-encoder LR multipliers, no decay on biases/norms) and warmup + cosine."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR


def _no_decay(name: str, param: nn.Parameter) -> bool:
    return param.ndim <= 1 or name.endswith(".bias") or "norm" in name.lower()


def param_groups(
    model: nn.Module, lr: float, weight_decay: float, lr_mults: dict[str, float], head_lr_mult: float = 1.0,
) -> list[dict[str, object]]:
    """AdamW groups: (encoder, decay or not) for each encoder with its lr multiplier, then the head (at
    ``head_lr_mult``: a pretrained language model fine-tuned gently) when it has its own multiplier, then
    the rest.

    Args:
        model: a MultimodalModel (has ``encoders``), or any module (all parameters in the "rest").
        lr_mults: {input name: learning-rate multiplier of that encoder}.
    """
    groups: list[dict[str, object]] = []
    seen: set[int] = set()
    encoders = getattr(model, "encoders", {})
    for name, encoder in encoders.items():
        mult = lr_mults.get(name, 1.0)
        groups += _split(encoder.named_parameters(), lr * mult, weight_decay, f"encoder:{name}")
        seen.update(id(p) for p in encoder.parameters())
    head = getattr(model, "head", None)
    if head_lr_mult != 1.0 and isinstance(head, nn.Module):
        groups += _split(head.named_parameters(), lr * head_lr_mult, weight_decay, "head")
        seen.update(id(p) for p in head.parameters())
    rest = [(n, p) for n, p in model.named_parameters() if id(p) not in seen]
    groups += _split(iter(rest), lr, weight_decay, "fusion+head")
    return [g for g in groups if g["params"]]


def _split(named: object, lr: float, weight_decay: float, label: str) -> list[dict[str, object]]:
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for name, param in named:  # type: ignore[attr-defined]
        (no_decay if _no_decay(name, param) else decay).append(param)
    return [
        {"params": decay, "lr": lr, "weight_decay": weight_decay, "name": f"{label}/decay"},
        {"params": no_decay, "lr": lr, "weight_decay": 0.0, "name": f"{label}/no_decay"},
    ]


def make_optimizer(groups: list[dict[str, object]], fused: bool = True) -> torch.optim.AdamW:
    """AdamW over the given groups (each group carries its own lr and weight decay).

    ``fused``: torch's fused kernel for the contiguous parameters; on a CPU torch otherwise steps one
    tensor at a time, and the step took 3 to 6 times as long (bench/README, ``optimizer_step``). Parameters
    in another memory layout (channels-last convolution weights) keep the per-tensor step in a group of
    their own: the fused CPU kernel pairs the elements of a parameter, its gradient and its moments by
    position, which is wrong when their layouts differ (measured: a resumed run's contiguous moments
    against channels-last weights).
    """
    if not fused:
        return torch.optim.AdamW(groups)  # type: ignore[arg-type]
    split: list[dict[str, object]] = []
    for group in groups:
        params = list(group["params"])  # type: ignore[call-overload]
        dense = [p for p in params if p.is_contiguous()]
        strided = [p for p in params if not p.is_contiguous()]
        split += [{**group, "params": dense, "fused": True}] if dense else []
        if strided:
            split.append({**group, "params": strided, "name": f"{group.get('name', 'group')}/strided"})
    return torch.optim.AdamW(split)  # type: ignore[arg-type]


def warmup_cosine(optimizer: torch.optim.Optimizer, total_steps: int, warmup_ratio: float) -> LambdaLR:
    """Linear warmup over ``warmup_ratio * total_steps`` steps (step k runs at (k+1)/(warmup+1) of the
    peak), then cosine decay to 0."""
    warmup = int(round(warmup_ratio * total_steps))
    total = max(total_steps, 1)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))

    return LambdaLR(optimizer, factor)

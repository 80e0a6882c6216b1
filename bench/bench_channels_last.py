"""Convolutional encoders in channels-last memory format against the contiguous layout (issue 16).

Each encoder is built from the registry with its default options but ``channels_last`` (``true``, the
default, against ``false``), from the same seed, and timed on the same random batch of 32 rows: a training
step (forward, a loss on the pooled vector, backward, AdamW) and an evaluation forward under ``no_grad``
at batch 32 and at batch 1 (prediction). Sides are interleaved; medians.

Rows: ``channels_last_<encoder>``: training-step seconds, channels-last / contiguous (goal <= 0.9); the
evaluation ratios are in the details and the notes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from common import BenchResult, Settings, interleaved, median

NAME = "channels_last"
GOAL = "<= 0.9"
BATCH = 32
CASES: dict[str, tuple[str, dict[str, Any], Callable[[int], dict[str, torch.Tensor]]]] = {
    "small_cnn_28px_gray": ("small_cnn", {"size": 28, "channels": 1},
                            lambda b: {"pixels": torch.randint(0, 256, (b, 1, 28, 28), dtype=torch.uint8)}),
    "small_cnn_64px_rgb": ("small_cnn", {"size": 64},
                           lambda b: {"pixels": torch.randint(0, 256, (b, 3, 64, 64), dtype=torch.uint8)}),
    "mel_cnn_1s": ("mel_cnn", {}, lambda b: {"mel": torch.randn(b, 101, 64),
                                             "mask": torch.ones(b, 101, dtype=torch.bool)}),
    "efficientnet_lite0_112px": ("efficientnet_lite0", {"size": 112},
                                 lambda b: {"pixels": torch.randint(0, 256, (b, 3, 112, 112),
                                                                    dtype=torch.uint8)}),
}


def _encoder(name: str, options: dict[str, Any], channels_last: bool) -> Any:
    """The registered encoder built as training builds it, with a fitted preprocessor."""
    from omnifuse.config.base import ComponentConfig
    from omnifuse.config.binding import encoder_options
    from omnifuse.encoders.base import ENCODERS, InputSpec

    spec = ENCODERS.get(name)
    component = ComponentConfig(name=name, options=options | {"channels_last": channels_last})
    parsed = encoder_options(component, f"bench.{name}")
    modality = spec.modality
    pre = spec.make_preprocessor(parsed, InputSpec("x", modality, {"x": modality}))
    torch.manual_seed(0)
    return spec.build(parsed, pre, None)


def _sides(case: str) -> dict[str, dict[str, Callable[[], Any]]]:
    """Per side (channels_last / contiguous): a training step and eval forwards at batch 32 and 1."""
    name, options, make_batch = CASES[case]
    batch, single = make_batch(BATCH), make_batch(1)
    sides: dict[str, dict[str, Callable[[], Any]]] = {}
    for side, on in (("channels_last", True), ("contiguous", False)):
        encoder = _encoder(name, options, on)
        optimizer = torch.optim.AdamW(encoder.parameters(), 1e-3)

        def step(encoder: Any = encoder, optimizer: Any = optimizer) -> None:
            encoder.train()
            loss = encoder(batch).pooled.square().mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

        def forward(rows: dict[str, torch.Tensor], encoder: Any = encoder) -> None:
            encoder.eval()
            with torch.no_grad():
                encoder(rows)

        sides[side] = {"train": step, "eval32": lambda f=forward: f(batch),
                       "eval1": lambda f=forward: f(single)}
    return sides


def _timed(sides: dict[str, dict[str, Callable[[], Any]]], kind: str, repeats: int) -> dict[str, float]:
    """Median seconds of ``kind`` per side, interleaved (order alternating), after one warm-up each."""
    samples = interleaved({name: calls[kind] for name, calls in sides.items()}, repeats, warmup=1)
    return {name: median([s.wall for s in values]) for name, values in samples.items()}


def run(settings: Settings) -> list[BenchResult]:
    """One row per encoder."""
    results = []
    for case in CASES:
        if case.startswith("efficientnet") and not _has_efficientnet():
            continue
        sides = _sides(case)
        heavy = case.startswith("efficientnet")
        repeats = max(3, settings.repeats * (1 if heavy else 3))
        times = {kind: _timed(sides, kind, repeats * (1 if kind == "train" else 2)) for kind in
                 ("train", "eval32", "eval1")}
        ratio = {kind: t["channels_last"] / t["contiguous"] for kind, t in times.items()}
        note = (f"train step of {BATCH}; eval forward at batch {BATCH}: {ratio['eval32']:.2f}, at batch 1: "
                f"{ratio['eval1']:.2f}")
        results.append(BenchResult(f"channels_last_{case}", "s/step", times["train"]["channels_last"],
                                   times["train"]["contiguous"], ratio["train"], GOAL,
                                   {"seconds": times, "ratios": ratio, "batch": BATCH}, note))
    return results


def _has_efficientnet() -> bool:
    import importlib.util

    return importlib.util.find_spec("efficientnet_lite_pytorch") is not None

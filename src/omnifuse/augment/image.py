"""Image augmentation on uint8 pixel batches (B, C, H, W): random affine, random erasing, flips."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from omnifuse.augment.base import AUGMENTS, AugmentSpec, Inputs, Transform, chance, uniform


@dataclass
class AffineOptions:
    """Options of ``affine``."""

    degrees: float = 10.0  # rotation drawn from [-degrees, degrees]
    translate: float = 0.1  # shift drawn from [-translate, translate] of the side, per axis
    scale: float = 0.1  # zoom drawn from [1 - scale, 1 + scale]
    p: float = 1.0  # share of rows transformed
    fill: Literal["zeros", "border"] = "zeros"  # what enters from outside: black, or the edge pixels
    interpolation: Literal["bilinear", "nearest"] = "bilinear"  # nearest keeps sparse or binary images crisp


@dataclass
class EraseOptions:
    """Options of ``erase`` (random erasing, Zhong et al. 2017, https://arxiv.org/abs/1708.04896)."""

    p: float = 0.25  # share of rows with one erased rectangle
    min_area: float = 0.02  # smallest rectangle, as a share of the image
    max_area: float = 0.2  # largest rectangle, as a share of the image
    value: float = 0.0  # pixel value (0..255) written into the rectangle


@dataclass
class FlipOptions:
    """Options of ``flip`` (only where mirror images mean the same: not for digits or text)."""

    horizontal: float = 0.5  # probability of a left-right flip
    vertical: float = 0.0  # probability of an up-down flip


def affine_theta(angle: Tensor, zoom: Tensor, shift_x: Tensor, shift_y: Tensor) -> Tensor:
    """(B,) rotation (radians), zoom, shifts (in [-1, 1] grid units) -> (B, 2, 3) sampling matrices.

    ``affine_grid`` maps output coordinates to input ones, so the inverse of the wanted transform is built:
    a zoom above 1 samples a smaller area (the content grows).
    """
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom  # (B,)
    row0 = torch.stack([cos, -sin, shift_x], dim=1)  # (B, 3)
    row1 = torch.stack([sin, cos, shift_y], dim=1)  # (B, 3)
    return torch.stack([row0, row1], dim=1)  # (B, 2, 3)


def _affine(options: AffineOptions) -> Transform:
    def apply(inputs: Inputs, generator: torch.Generator) -> Inputs:
        pixels = inputs["pixels"]  # (B, C, H, W) uint8
        b, device = pixels.shape[0], pixels.device
        angle = uniform(generator, b, -options.degrees, options.degrees, device) * (math.pi / 180.0)
        zoom = uniform(generator, b, 1.0 - options.scale, 1.0 + options.scale, device)
        shift = [uniform(generator, b, -2 * options.translate, 2 * options.translate, device) for _ in "xy"]
        keep = ~chance(generator, b, options.p, device)
        theta = affine_theta(angle, zoom, *shift)  # (B, 2, 3)
        theta[keep] = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], device=device)
        x = pixels.float()  # (B, C, H, W)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)  # (B, H, W, 2)
        moved = F.grid_sample(x, grid, mode=options.interpolation, padding_mode=options.fill,
                              align_corners=False)
        return {**inputs, "pixels": moved.round().clamp(0, 255).to(pixels.dtype)}

    return apply


def _erase(options: EraseOptions) -> Transform:
    def apply(inputs: Inputs, generator: torch.Generator) -> Inputs:
        pixels = inputs["pixels"]  # (B, C, H, W)
        b, (h, w), device = pixels.shape[0], pixels.shape[-2:], pixels.device
        area = uniform(generator, b, options.min_area, options.max_area, device)
        aspect = torch.exp(uniform(generator, b, math.log(0.3), math.log(1 / 0.3), device))
        height = (torch.sqrt(area * aspect) * h).clamp(1, h)  # (B,)
        width = (torch.sqrt(area / aspect) * w).clamp(1, w)  # (B,)
        top = uniform(generator, b, 0.0, 1.0, device) * (h - height)
        left = uniform(generator, b, 0.0, 1.0, device) * (w - width)
        rows = torch.arange(h, device=device)[None, :]  # (1, H)
        cols = torch.arange(w, device=device)[None, :]  # (1, W)
        in_rows = (rows >= top[:, None]) & (rows < (top + height)[:, None])  # (B, H)
        in_cols = (cols >= left[:, None]) & (cols < (left + width)[:, None])  # (B, W)
        box = in_rows[:, :, None] & in_cols[:, None, :]  # (B, H, W)
        box &= chance(generator, b, options.p, device)[:, None, None]
        erased = pixels.masked_fill(box[:, None], int(round(options.value)))  # (B, C, H, W)
        return {**inputs, "pixels": erased}

    return apply


def _flip(options: FlipOptions) -> Transform:
    def apply(inputs: Inputs, generator: torch.Generator) -> Inputs:
        pixels = inputs["pixels"]  # (B, C, H, W)
        b, device = pixels.shape[0], pixels.device
        for p, dim in ((options.horizontal, 3), (options.vertical, 2)):
            rows = chance(generator, b, p, device)[:, None, None, None]  # (B, 1, 1, 1)
            pixels = torch.where(rows, pixels.flip(dim), pixels)
        return {**inputs, "pixels": pixels}

    return apply


AUGMENTS.add("affine", AugmentSpec(("pixels",), AffineOptions, _affine,
                                   "random rotation, shift and zoom of images (bilinear)"))
AUGMENTS.add("erase", AugmentSpec(("pixels",), EraseOptions, _erase,
                                  "random erasing: one rectangle of the image blanked"))
AUGMENTS.add("flip", AugmentSpec(("pixels",), FlipOptions, _flip,
                                 "left-right (and up-down) mirror images; off unless configured"))

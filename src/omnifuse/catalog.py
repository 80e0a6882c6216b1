"""Explicit registration: importing this module fills the encoder, fusion and head registries."""

from __future__ import annotations

import omnifuse.encoders.audio
import omnifuse.encoders.image
import omnifuse.encoders.lexical
import omnifuse.encoders.mfcc
import omnifuse.encoders.tabular
import omnifuse.encoders.text
import omnifuse.fusion.attention
import omnifuse.fusion.bilinear
import omnifuse.fusion.concat
import omnifuse.fusion.cross_attention
import omnifuse.fusion.gated
import omnifuse.fusion.late
import omnifuse.fusion.tensor
import omnifuse.fusion.transformer
import omnifuse.fusion.weighted_sum
import omnifuse.generation.prompt
import omnifuse.heads.classification
import omnifuse.heads.regression  # noqa: F401
from omnifuse.encoders.base import ENCODERS
from omnifuse.fusion.base import FUSIONS
from omnifuse.heads.base import HEADS


def list_encoders() -> list[str]:
    """Registered encoder names."""
    return ENCODERS.names()


def list_fusions() -> list[str]:
    """Registered fusion names."""
    return FUSIONS.names()


def list_heads() -> list[str]:
    """Registered head names (one per task)."""
    return HEADS.names()

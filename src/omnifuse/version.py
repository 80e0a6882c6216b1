"""The package version, written into every model folder."""

from __future__ import annotations

__version__ = "0.1.0"


def compatible(saved: str, current: str = __version__) -> bool:
    """Model folders load across patch releases only (same major.minor)."""
    return saved.split(".")[:2] == current.split(".")[:2]

"""Atomic checkpoints: write to a temporary file in the same folder, then rename over the old one."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

LAST = "last.pt"
BEST = "best.safetensors"


def atomic_write(path: Path, write: Any) -> None:
    """Calls ``write(tmp_path)`` then renames tmp over ``path``; a crash leaves the old file intact."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def save_checkpoint(folder: Path, state: dict[str, Any]) -> Path:
    """Writes the training state (tensors and plain values only) to ``folder/last.pt``."""
    path = folder / LAST
    atomic_write(path, lambda tmp: torch.save(state, tmp))
    return path


def load_checkpoint(folder: Path) -> dict[str, Any] | None:
    """Reads ``folder/last.pt`` with ``weights_only=True`` (no arbitrary pickles); None if absent."""
    path = folder / LAST
    if not path.exists():
        return None
    return torch.load(path, map_location="cpu", weights_only=True)  # type: ignore[no-any-return]


def save_weights(path: Path, state: dict[str, Tensor], metadata: dict[str, str] | None = None) -> None:
    """Atomically writes a state dict as safetensors (tensors made contiguous and unshared)."""
    plain = {k: v.detach().contiguous().clone() for k, v in state.items()}
    atomic_write(path, lambda tmp: save_file(plain, str(tmp), metadata=metadata))


def load_weights(path: Path) -> dict[str, Tensor]:
    """Reads a safetensors state dict onto the CPU."""
    return load_file(str(path), device="cpu")

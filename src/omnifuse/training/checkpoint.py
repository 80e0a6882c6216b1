"""Atomic checkpoints: write to a temporary file in the same folder, then rename over the old one.

A crash (even SIGKILL) mid-write leaves the previous file intact and at worst a stray
``.<name>.*.tmp`` file, which is never read and is deleted by ``load_checkpoint``."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor

from omnifuse.errors import CheckpointError
from omnifuse.training.state_file import load_state, save_state

LAST = "last.safetensors"
LEGACY_LAST = "last.pt"  # written by earlier omnifuse versions: a torch pickle archive, no longer read
BEST = "best.safetensors"
MIN_FREE_BYTES = 50 * 1024**2  # checked before training starts, when the model's size is not known yet


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
    """Writes the training state (tensors and plain values only) to ``folder/last.safetensors``: the
    tensors as safetensors, the rest as JSON in its metadata (see ``state_file``); no pickle.

    Raises:
        CheckpointError: the disk is full (or over quota); the previous checkpoint is left intact.
    """
    path = folder / LAST
    with _disk_full_explained(path):
        atomic_write(path, lambda tmp: save_state(tmp, state))
    return path


def load_checkpoint(folder: Path) -> dict[str, Any] | None:
    """Reads ``folder/last.safetensors``; None if absent.

    Stray temporary files of interrupted writes are deleted first; they are never loaded.

    Raises:
        CheckpointError: only an old pickle checkpoint (``last.pt``) is there, or the file is corrupt.
    """
    remove_stale_tmp(folder)
    path = folder / LAST
    if not path.exists():
        if (folder / LEGACY_LAST).exists():
            raise CheckpointError(
                f"{folder / LEGACY_LAST} was written by an older omnifuse (a torch pickle archive, which "
                "this version does not read); start the run again without --resume, or finish it with the "
                "omnifuse version that started it"
            )
        return None
    try:
        return load_state(path)
    except (ValueError, OSError, SafetensorError) as exc:
        raise CheckpointError(
            f"checkpoint {str(path)!r} is not readable ({exc}); start the run again without --resume"
        ) from None


def save_weights(path: Path, state: dict[str, Tensor], metadata: dict[str, str] | None = None) -> None:
    """Atomically writes a state dict as safetensors (tensors made contiguous and unshared)."""
    plain = {k: v.detach().contiguous().clone() for k, v in state.items()}
    with _disk_full_explained(path):
        atomic_write(path, lambda tmp: save_file(plain, str(tmp), metadata=metadata))


def load_weights(path: Path) -> dict[str, Tensor]:
    """Reads a safetensors state dict onto the CPU."""
    return load_file(str(path), device="cpu")


def remove_stale_tmp(folder: Path) -> list[Path]:
    """Deletes the ``.last.safetensors.*.tmp`` / ``.best.safetensors.*.tmp`` (and old ``.last.pt.*.tmp``)
    files a killed run left; returns them."""
    if not folder.is_dir():
        return []
    stale = [p for name in (LAST, BEST, LEGACY_LAST) for p in folder.glob(f".{name}.*.tmp")]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


@contextmanager
def _disk_full_explained(path: Path) -> Iterator[None]:
    """Turns ENOSPC / EDQUOT while writing ``path`` into a CheckpointError that says what survived."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        folder = path.parent
        kept = (
            f"the previous checkpoint {str(folder / LAST)!r} is intact"
            if (folder / LAST).exists()
            else "no earlier checkpoint exists"
        )
        raise CheckpointError(
            f"disk full while writing {str(path)!r} in folder {str(folder)!r}; {kept}. "
            "Free some space (or choose another --out), then continue with "
            "`omnifuse train ... --resume` and the same arguments"
        ) from exc


def check_writable(folder: Path) -> None:
    """Creates and deletes a temporary file in ``folder``.

    Raises:
        CheckpointError: the folder cannot be written, naming it and the fix.
    """
    try:
        fd, tmp = tempfile.mkstemp(prefix=".omnifuse-write-test.", dir=folder)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise CheckpointError(
            f"output folder {str(folder)!r} is not writable ({exc.strerror or exc}); "
            "fix its permissions or choose another --out"
        ) from exc


def ensure_free_space(folder: Path, needed: int, what: str) -> None:
    """Checks that the disk holding ``folder`` has at least ``needed`` bytes free.

    Args:
        folder: an existing folder on the disk to check.
        needed: bytes required.
        what: what the space is for, shown in the error (e.g. "a checkpoint of this model").
    Raises:
        CheckpointError: too little space, with both numbers.
    """
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise CheckpointError(
            f"not enough free disk space in {str(folder)!r} for {what}: {_mb(free)} free, "
            f"about {_mb(needed)} needed; free some space or choose another --out"
        )


def _mb(size: int) -> str:
    return f"{size / 1024**2:.1f} MB"

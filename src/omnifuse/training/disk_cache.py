"""Frozen encoders' features on disk: computed once, reused by later epochs, later runs and `compare`.

One safetensors file per (encoder, input) under ``<root>/<encoder key>/<row key[:2]>/<row key>.safetensors``:

- the encoder key hashes the encoder's registry name, its options and its weights (``state_fingerprint``),
  so a new model file, other options or fine-tuned weights get other files;
- the row key hashes the preprocessed input tensors (``inputs_fingerprint``: names, dtypes, shapes,
  bytes), so an edited input file gives other pixels or tokens and so another key.

Files are written to a temporary name and renamed (atomic on POSIX), and carry a checksum of their
tensors in the safetensors metadata: a partial, corrupt or foreign file is detected on reading, deleted
and recomputed, never trusted. No pickle is involved. The root is ``$OMNIFUSE_CACHE_DIR`` or
``~/.cache/omnifuse/features``; it is safe to delete at any time.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors
from torch import Tensor, nn

CACHE_ENV = "OMNIFUSE_CACHE_DIR"
DEFAULT_ROOT = "~/.cache/omnifuse/features"
FORMAT = "1"  # part of every encoder key: bump it when the stored layout changes
_DIGEST = 20  # bytes of blake2b digests (40 hex characters)


def cache_root() -> Path:
    """The feature cache folder: ``$OMNIFUSE_CACHE_DIR`` when set, else ``~/.cache/omnifuse/features``."""
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_ROOT).expanduser()


def _update(digest: Any, tensor: Tensor) -> None:
    """Feeds a tensor's dtype, shape and raw bytes to ``digest`` (no copy for contiguous CPU tensors)."""
    flat = tensor.detach().cpu().contiguous().reshape(-1)  # (N,)
    digest.update(f"{flat.dtype}{tuple(tensor.shape)}".encode())
    digest.update(flat.view(torch.uint8).numpy())  # bytes of any dtype, bfloat16 included


def state_fingerprint(module: nn.Module) -> str:
    """A hash of every tensor of ``module.state_dict()`` with its name (the identity of the weights)."""
    digest = hashlib.blake2b(digest_size=_DIGEST)
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        _update(digest, tensor)
    return digest.hexdigest()


def inputs_fingerprint(inputs: dict[str, Tensor]) -> str:
    """A hash of one row's preprocessed input tensors (names, dtypes, shapes and values)."""
    digest = hashlib.blake2b(digest_size=_DIGEST)
    for name in sorted(inputs):
        digest.update(name.encode())
        _update(digest, inputs[name])
    return digest.hexdigest()


def encoder_key(encoder: str, options: dict[str, Any], weights: str) -> str:
    """The key of one encoder's features: registry name + options + weights fingerprint + format, and the
    omnifuse / torch / transformers versions (an encoder's code may change between releases)."""
    payload = json.dumps({"encoder": encoder, "options": options, "weights": weights, "format": FORMAT,
                          "code": _code_versions()}, sort_keys=True, default=str)
    return hashlib.blake2b(payload.encode(), digest_size=_DIGEST).hexdigest()


def _code_versions() -> dict[str, str]:
    import transformers

    from omnifuse.version import __version__

    return {"omnifuse": __version__, "torch": torch.__version__, "transformers": transformers.__version__}


def _checksum(tensors: dict[str, Tensor]) -> str:
    return inputs_fingerprint(tensors)


class FeatureStore:
    """The feature files of one encoder; a miss, a corrupt file or an unwritable folder is never an error.

    Args:
        root: the cache folder (``cache_root()``).
        key: the encoder key (``encoder_key``).

    Attributes:
        hits / misses / corrupt / written: counters since construction (what a run reports).
    """

    def __init__(self, root: Path, key: str) -> None:
        self.folder = root / key
        self.hits = self.misses = self.corrupt = self.written = 0
        self._writable = True

    def path(self, row_key: str) -> Path:
        """Where the features of the row with this key live."""
        return self.folder / row_key[:2] / f"{row_key}.safetensors"

    def load(self, row_key: str) -> dict[str, Tensor] | None:
        """The stored features of a row, or None when absent or unreadable (a bad file is deleted)."""
        path = self.path(row_key)
        try:
            data = path.read_bytes()
        except OSError:  # absent (the usual miss) or unreadable
            self.misses += 1
            return None
        tensors = _parse(data, row_key)
        if tensors is None:
            self.corrupt += 1
            self.misses += 1
            path.unlink(missing_ok=True)
            return None
        self.hits += 1
        return tensors

    def save(self, row_key: str, tensors: dict[str, Tensor]) -> None:
        """Writes a row's features atomically (temporary file + rename); warns once if it cannot."""
        if not self._writable:
            return
        path = self.path(row_key)
        metadata = {"row": row_key, "checksum": _checksum(tensors)}
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".part-", suffix=".tmp")
            try:
                with os.fdopen(handle, "wb") as file:
                    own = {k: v.clone(memory_format=torch.contiguous_format) for k, v in tensors.items()}
                    file.write(save_tensors(own, metadata))  # own, packed memory: no shared views
                os.replace(temporary, path)
            finally:
                if os.path.exists(temporary):
                    os.unlink(temporary)
        except OSError as exc:
            self._writable = False
            warnings.warn(f"cannot write the feature cache under {self.folder} ({exc}); features are "
                          f"computed but not kept; set {CACHE_ENV} to a writable folder", stacklevel=2)
            return
        self.written += 1


def _parse(data: bytes, row_key: str) -> dict[str, Tensor] | None:
    """The tensors of a feature file, or None when it is truncated, corrupt or for another row."""
    try:
        (length,) = struct.unpack("<Q", data[:8])
        header = json.loads(data[8 : 8 + length])
        metadata = header.get("__metadata__") or {}
        tensors = load_tensors(data)
    except (struct.error, ValueError, SafetensorError, AttributeError):
        return None  # json / unicode errors are ValueErrors
    if metadata.get("row") != row_key or metadata.get("checksum") != _checksum(tensors):
        return None
    return tensors

"""Training state (nested dicts and lists of tensors and plain values) as one safetensors file, no pickle.

The tensors go into the file's tensor table under path-like keys (``optimizer/state/3/exp_avg``); the rest
of the tree, with each tensor replaced by ``{"__tensor__": key}``, is JSON in the file's metadata. Dicts
whose keys are not all strings (the optimizer's per-parameter state uses ints) are stored as
``{"__items__": [[key, value], ...]}`` so that their keys come back with their types.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import safe_open
from safetensors.torch import save_file
from torch import Tensor

STATE_KEY = "omnifuse_state"
FORMAT_KEY = "omnifuse_state_format"
FORMAT = "1"
PLAIN = (str, int, float, bool, type(None))


def flatten(tree: Any, tensors: dict[str, Tensor], path: str = "") -> Any:
    """The JSON skeleton of ``tree``; its tensors are added to ``tensors`` (detached, contiguous copies).

    Raises:
        TypeError: a leaf is neither a tensor nor a plain value (an internal error: state must be plain).
    """
    if isinstance(tree, Tensor):
        key = path or "tensor"
        tensors[key] = tree.detach().cpu().contiguous().clone()
        return {"__tensor__": key}
    if isinstance(tree, dict):
        if all(isinstance(k, str) for k in tree):
            return {k: flatten(v, tensors, f"{path}/{k}") for k, v in tree.items()}
        return {"__items__": [[k, flatten(v, tensors, f"{path}/{k}")] for k, v in tree.items()]}
    if isinstance(tree, (list, tuple)):
        return [flatten(v, tensors, f"{path}/{i}") for i, v in enumerate(tree)]
    if isinstance(tree, PLAIN):
        return tree
    if isinstance(tree, np.generic):  # a numpy scalar in the history: its Python value
        return tree.item()
    raise TypeError(f"training state at {path or '/'} holds a {type(tree).__name__}; only tensors and plain "
                    "values can be saved")


def unflatten(skeleton: Any, tensors: dict[str, Tensor]) -> Any:
    """The tree ``flatten`` took apart."""
    if isinstance(skeleton, dict):
        if set(skeleton) == {"__tensor__"}:
            return tensors[skeleton["__tensor__"]]
        if set(skeleton) == {"__items__"}:
            return {k: unflatten(v, tensors) for k, v in skeleton["__items__"]}
        return {k: unflatten(v, tensors) for k, v in skeleton.items()}
    if isinstance(skeleton, list):
        return [unflatten(v, tensors) for v in skeleton]
    return skeleton


def save_state(path: Path, state: dict[str, Any]) -> None:
    """Writes ``state`` to ``path`` as safetensors (the skeleton in the metadata)."""
    tensors: dict[str, Tensor] = {}
    skeleton = flatten(state, tensors)
    metadata = {STATE_KEY: json.dumps(skeleton), FORMAT_KEY: FORMAT}
    save_file(tensors, str(path), metadata=metadata)


def load_state(path: Path) -> dict[str, Any]:
    """Reads what ``save_state`` wrote, onto the CPU.

    Raises:
        ValueError: the file is not a training-state file (no skeleton in its metadata).
    """
    with safe_open(str(path), framework="pt", device="cpu") as file:
        metadata = file.metadata() or {}
        if STATE_KEY not in metadata:
            raise ValueError(f"{path} holds tensors but no omnifuse training state")
        tensors = {key: file.get_tensor(key) for key in file.keys()}  # noqa: SIM118 - safe_open has no items
    state: dict[str, Any] = unflatten(json.loads(metadata[STATE_KEY]), tensors)
    return state

"""Training in stages, as LLaVA does: a run starts from an earlier generation model's weights.

``generation.init_from: DIR`` copies into the new model every tensor of ``DIR/model.safetensors`` whose name
and shape match (the projector, the encoders, the LM), e.g. an ``align`` run (``train_lm: auto``: the
projector learns on captions, the LM frozen) followed by an ``instruct`` run on conversations with
``train_lm: lora`` or ``full``. LoRA's wrapping of the LM is looked through, so adapters start at zero on
top of the earlier weights.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from omnifuse.errors import ModelDirError

WEIGHTS = "model.safetensors"


def plain_name(name: str) -> str:
    """A parameter's name without peft's LoRA wrapping (``base_model.model.``, ``.base_layer``)."""
    return name.replace("base_model.model.", "").replace(".base_layer", "")


def start_from(model: nn.Module, folder: Path) -> tuple[int, int]:
    """Copies the matching tensors of ``folder``'s weights into ``model``; (copied, model tensors).

    Raises:
        ModelDirError: no weights file there, or no tensor matches (another architecture).
    """
    from omnifuse.training.checkpoint import load_weights

    path = folder / WEIGHTS
    if not path.is_file():
        raise ModelDirError(f"generation.init_from: {folder} has no {WEIGHTS}; give the --out folder of an "
                            "earlier `omnifuse train` of a generation model")
    saved = load_weights(path)
    state = model.state_dict()
    copied = 0
    with torch.no_grad():
        for name, tensor in state.items():
            earlier = saved.get(plain_name(name))
            if earlier is not None and earlier.shape == tensor.shape:
                tensor.copy_(earlier)
                copied += 1
    if not copied:
        raise ModelDirError(f"generation.init_from: no tensor of {path} matches this model (another "
                            "architecture or language model); start from a model with the same LM and inputs")
    return copied, len(state)

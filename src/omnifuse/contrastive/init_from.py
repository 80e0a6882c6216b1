"""Pretrain, then fine-tune: start an encoder (and its preprocessor) from a tower of a saved model folder.

``encoder: {name: small_cnn, init_from: DIR, init_column: image}`` copies the weights of ``DIR``'s encoder
for column ``image`` (not its projection) and that column's fitted preprocessor state. It happens only when
training starts; the fine-tuned folder saves its own copy, so it loads without ``DIR``.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from omnifuse.config.sections import ComponentConfig, Config
from omnifuse.data.preprocess.base import Preprocessor
from omnifuse.errors import ConfigError, ModelDirError

if TYPE_CHECKING:
    from omnifuse.artifacts.folder import LoadedModel


@functools.lru_cache(maxsize=4)
def _load(folder: str, stamp: int) -> LoadedModel:
    """The loaded folder; ``stamp`` (the manifest's mtime) makes a re-written folder load afresh."""
    from omnifuse.artifacts.folder import load_model

    return load_model(folder)


def load_pretrained(component: ComponentConfig, column: str) -> tuple[LoadedModel, str]:
    """The loaded ``init_from`` folder and the tower to copy (``init_column``, default ``column``).

    Raises:
        ModelDirError: the folder is not a loadable model folder.
        ConfigError: it has no such tower, or the tower uses another encoder.
    """
    assert component.init_from is not None, "only called for encoders with init_from"
    where = f"columns.{column}.encoder"
    folder = Path(component.init_from).expanduser().resolve()
    manifest = folder / "manifest.json"
    try:
        loaded = _load(str(folder), manifest.stat().st_mtime_ns if manifest.exists() else 0)
    except ModelDirError as exc:
        raise ModelDirError(f"{where}.init_from: {exc}") from None
    tower = component.init_column or column
    if tower not in loaded.model.encoders:
        towers = ", ".join(loaded.model.encoders)
        raise ConfigError([f"{where}.init_column: the model in {str(folder)!r} has no tower {tower!r} "
                           f"(its towers: {towers}); set init_column to one of them"])
    theirs = loaded.config.encoder_of(tower).name
    if theirs != component.name:
        raise ConfigError([f"{where}: encoder {component.name!r} cannot start from tower {tower!r} of "
                           f"{str(folder)!r}, which is a {theirs!r}; set name: {theirs} (with the same "
                           "options as in that folder's config.yaml) or remove init_from"])
    return loaded, tower


def pretrained_preprocessors(config: Config, preprocessors: dict[str, Preprocessor]) -> set[str]:
    """Gives the inputs whose encoder has ``init_from`` the pretrained tower's fitted preprocessor state.

    Returns:
        The names of those inputs: they must not be fitted again (the vocabulary must match the weights).
    Raises:
        ModelDirError / ConfigError: see ``load_pretrained``; ConfigError also when the state does not fit
            this encoder's options.
    """
    from omnifuse.artifacts.folder import ASSETS

    done: set[str] = set()
    for name, pre in preprocessors.items():
        component = config.encoder_of(name)
        if component.init_from is None:
            continue
        loaded, tower = load_pretrained(component, name)
        try:
            pre.load_state_dict(loaded.preprocessors[tower].state_dict())
            pre.load_assets(loaded.folder / ASSETS / tower / "preprocessor")
        except Exception as exc:  # options that do not fit the state fail in preprocessor-specific ways
            raise ConfigError([f"columns.{name}.encoder: the preprocessor state of tower {tower!r} in "
                               f"{str(loaded.folder)!r} does not fit these options ({exc}); use that "
                               f"tower's options {loaded.config.encoder_of(tower).options}"]) from None
        done.add(name)
    return done


def init_encoder(encoder: nn.Module, component: ComponentConfig, column: str) -> None:
    """Copies the pretrained tower's weights into ``encoder``.

    Raises:
        ModelDirError: a weight is missing or has another shape (both shapes and the fix are named).
    """
    loaded, tower = load_pretrained(component, column)
    source: dict[str, Tensor] = loaded.model.encoders[tower].state_dict()
    # LoRA (peft) wraps the model: its base weights are copied under their plain names, adapters kept
    names = {plain_key(k): k for k in encoder.state_dict() if ".lora_" not in k}
    target = {plain: encoder.state_dict()[key] for plain, key in names.items()}
    missing = sorted(set(target) - set(source)) + sorted(set(source) - set(target))
    wrong = [(k, tuple(source[k].shape), tuple(v.shape)) for k, v in target.items()
             if k in source and source[k].shape != v.shape]
    if missing or wrong:
        detail = (f"weight {wrong[0][0]!r} has shape {wrong[0][1]} in the pretrained tower but "
                  f"{wrong[0][2]} here" if wrong else f"weights {missing[:3]} exist on one side only")
        raise ModelDirError(
            f"columns.{column}.encoder.init_from: tower {tower!r} of {str(loaded.folder)!r} does not fit "
            f"this encoder: {detail}; use the pretrained tower's options "
            f"{loaded.config.encoder_of(tower).options}"
        )
    with torch.no_grad():
        copied = {names[k]: v.detach().clone() for k, v in source.items()}
        encoder.load_state_dict(copied, strict=len(copied) == len(encoder.state_dict()))


def plain_key(key: str) -> str:
    """A weight's name as in the unwrapped model: ``model.base_model.model.x.query.base_layer.weight``
    (peft LoRA) -> ``model.x.query.weight``; other names are unchanged."""
    return key.replace("base_model.model.", "").replace(".base_layer.", ".")

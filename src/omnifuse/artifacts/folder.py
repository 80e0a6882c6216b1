"""Save and load model folders: config.yaml, preprocessors.json (+ assets/), model.safetensors. No pickle.

manifest.json (written last) holds the sha256 of each of those files; loading checks it first.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from omnifuse.artifacts.manifest import MANIFEST, verify_manifest, write_manifest
from omnifuse.build import build_model, make_preprocessors
from omnifuse.config.sections import Config
from omnifuse.data.preprocess.base import Preprocessor
from omnifuse.ensemble.layout import is_ensemble, single_model_only
from omnifuse.errors import ConfigError, ModelDirError
from omnifuse.generation.names import GENERATION_ASSETS
from omnifuse.model import MultimodalModel
from omnifuse.ood.gate import GATE_PREFIX
from omnifuse.readout.module import READOUT_PREFIX
from omnifuse.tasks import task_from_state
from omnifuse.tasks.base import Task
from omnifuse.training.checkpoint import atomic_write, load_weights, save_weights
from omnifuse.version import __version__, compatible

CONFIG = "config.yaml"
PREPROCESSORS = "preprocessors.json"
WEIGHTS = "model.safetensors"
STANDARDIZER_PREFIX = "standardizers."  # identity when absent from the weights (older folders)
# keys an older folder may lack: standardizers are then the identity, the OOD gate unfitted (it flags nothing)
OPTIONAL_PREFIXES = (STANDARDIZER_PREFIX, GATE_PREFIX, READOUT_PREFIX)
AUX_PREFIX = "aux_heads."  # training-only heads (training.aux_loss): never saved
METRICS = "metrics.json"
ASSETS = "assets"
REQUIRED = (CONFIG, PREPROCESSORS, WEIGHTS)


@dataclass
class LoadedModel:
    """Everything a Predictor needs, rebuilt from a model folder."""

    config: Config
    preprocessors: dict[str, Preprocessor]
    task: Task
    model: MultimodalModel
    folder: Path


def architecture_fingerprint(model: nn.Module) -> str:
    """A hash of the name and shape of each parameter/buffer prediction uses: same architecture, same hash."""
    return _fingerprint(inference_state(model))


def _fingerprint(state: dict[str, Any]) -> str:
    shapes = sorted((k, tuple(v.shape)) for k, v in state.items())
    return hashlib.sha256(repr(shapes).encode()).hexdigest()[:16]


def inference_state(model: nn.Module) -> dict[str, Any]:
    """The model's state without the training-only auxiliary heads (``training.aux_loss``)."""
    return {k: v for k, v in model.state_dict().items() if not k.startswith(AUX_PREFIX)}


def save_model(
    folder: Path, config: Config, preprocessors: dict[str, Preprocessor], task: Task, model: MultimodalModel
) -> None:
    """Writes the model folder (files written atomically; assets per input; manifest.json last).

    An earlier manifest.json is removed first, so a folder whose saving is interrupted never loads.
    """
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MANIFEST).unlink(missing_ok=True)
    for name, pre in preprocessors.items():
        pre_dir, enc_dir = folder / ASSETS / name / "preprocessor", folder / ASSETS / name / "encoder"
        pre_dir.mkdir(parents=True, exist_ok=True)
        enc_dir.mkdir(parents=True, exist_ok=True)
        pre.save_assets(pre_dir)
        model.encoders[name].save_assets(enc_dir)  # type: ignore[operator]
    _save_generation_assets(folder / ASSETS / GENERATION_ASSETS, task, model)
    state = {
        "omnifuse_version": __version__,
        "task": task.state_dict(),
        "inputs": {
            n: {"encoder": config.encoder_of(n).name, "state": p.state_dict()}
            for n, p in preprocessors.items()
        },
    }
    write_json(folder / PREPROCESSORS, state)
    atomic_write(folder / CONFIG, lambda tmp: config.to_yaml(tmp))
    weights = inference_state(model)
    metadata = {"omnifuse_version": __version__, "architecture": _fingerprint(weights)}
    save_weights(folder / WEIGHTS, weights, metadata)
    write_manifest(folder, REQUIRED, ASSETS)


def _save_generation_assets(folder: Path, task: Task, model: MultimodalModel) -> None:
    """A pretrained LM's tokenizer files and config.json (nothing for other models, or tiny_decoder)."""
    save_lm = getattr(model, "save_assets", None)
    if task.name != "generation" or save_lm is None:
        return
    task.save_assets(folder / "tokenizer")
    save_lm(folder / "lm")


def write_json(path: Path, data: Any) -> None:
    """Atomically writes pretty JSON."""
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8"))


def load_model(folder: str | Path) -> LoadedModel:
    """Rebuilds a saved model without the network.

    Raises:
        ModelDirError: a file is missing, unreadable, from an incompatible version, differs from
            manifest.json (or the manifest is missing), an unlisted file is under assets/, or the files
            do not match the weights (tampered preprocessors, weights of another architecture).
    """
    folder = Path(folder)
    _check_files(folder)
    verify_manifest(folder, REQUIRED, ASSETS)  # before anything else is read
    state = _read_preprocessor_state(folder)  # first: a newer release's files get the version message
    config = _read_config(folder)
    preprocessors = _restore_preprocessors(folder, config, state)
    try:
        task = task_from_state(state["task"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelDirError(
            f"{folder / PREPROCESSORS}: the task state is damaged ({exc}); re-train or restore "
            "the file from the original model folder"
        ) from None
    task.load_assets(folder / ASSETS / GENERATION_ASSETS / "tokenizer")
    model = build_model(config, preprocessors, task, assets=folder / ASSETS)
    _load_weights(folder, model)
    model.eval()
    return LoadedModel(config, preprocessors, task, model, folder)


def _check_files(folder: Path) -> None:
    if not folder.is_dir():
        raise ModelDirError(
            f"model folder {str(folder)!r} does not exist; pass the --out folder of `omnifuse train`"
        )
    if is_ensemble(folder):  # explain, export, serve, init_from: they need one model
        raise ModelDirError(single_model_only(folder))
    missing = [f for f in REQUIRED if not (folder / f).is_file()]
    if missing:
        raise ModelDirError(
            f"model folder {str(folder)!r} is incomplete: missing {', '.join(missing)}; "
            "was training interrupted? Re-run `omnifuse train ... --resume` or copy the whole folder"
        )


def _read_config(folder: Path) -> Config:
    try:
        return Config.from_yaml(folder / CONFIG)
    except ConfigError as exc:
        raise ModelDirError(f"{folder / CONFIG} is not a valid omnifuse config:\n{exc}") from None


def _read_preprocessor_state(folder: Path) -> dict[str, Any]:
    path = folder / PREPROCESSORS
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelDirError(
            f"{path} is not valid JSON ({exc}); restore it from the original model folder"
        ) from None
    if not isinstance(state, dict):
        raise ModelDirError(
            f"{path} should hold a JSON object, found {type(state).__name__}; "
            "restore it from the original model folder"
        )
    saved = str(state.get("omnifuse_version", "unknown"))
    if not compatible(saved, __version__):
        raise ModelDirError(
            f"{folder} was saved by omnifuse {saved}, this is {__version__}; "
            f"install omnifuse=={saved} to load it, or re-train"
        )
    return state  # type: ignore[no-any-return]


def _restore_preprocessors(folder: Path, config: Config, state: dict[str, Any]) -> dict[str, Preprocessor]:
    preprocessors = make_preprocessors(config)
    saved = state.get("inputs", {})
    if sorted(saved) != sorted(preprocessors):
        raise ModelDirError(
            f"{folder / PREPROCESSORS} describes inputs {sorted(saved)} but config.yaml has "
            f"{sorted(preprocessors)}; the files do not belong together"
        )
    for name, pre in preprocessors.items():
        entry = saved[name]
        if not isinstance(entry, dict):
            raise ModelDirError(
                f"{folder / PREPROCESSORS}: the entry of input {name!r} is damaged; restore the model folder"
            )
        if entry.get("encoder") != config.encoder_of(name).name:
            raise ModelDirError(
                f"{folder / PREPROCESSORS}: input {name!r} was preprocessed for encoder "
                f"{entry.get('encoder')!r} but config.yaml uses {config.encoder_of(name).name!r}"
            )
        try:
            pre.load_state_dict(entry["state"])
            pre.load_assets(folder / ASSETS / name / "preprocessor")
        except Exception as exc:  # a damaged state can fail in many ways; all mean the same to the user
            raise ModelDirError(
                f"{folder / PREPROCESSORS}: the preprocessor of input {name!r} cannot be "
                f"restored ({type(exc).__name__}: {exc}); restore the model folder"
            ) from None
    return preprocessors


def _load_weights(folder: Path, model: MultimodalModel) -> None:
    path = folder / WEIGHTS
    try:
        weights = load_weights(path)
    except Exception as exc:  # safetensors raises its own error types for damaged files
        raise ModelDirError(
            f"{path} cannot be read ({exc}); restore it from the original model folder"
        ) from None
    expected = model.state_dict()
    # a folder saved before training.standardize_frozen (or the OOD gate, or the linear read-out) existed:
    # its inputs were never standardised (or scored, or read out)
    missing = [k for k in expected if k not in weights and not k.startswith(OPTIONAL_PREFIXES)]
    unexpected = [k for k in weights if k not in expected]
    wrong = [k for k, v in weights.items() if k in expected and expected[k].shape != v.shape]
    if missing or unexpected or wrong:
        detail = missing[:3] + unexpected[:3] + wrong[:3]
        raise ModelDirError(
            f"{path} holds weights for another architecture than config.yaml and "
            f"preprocessors.json describe (first differences: {detail}); "
            "the files do not belong together"
        )
    model.load_state_dict(weights, strict=False)  # every key checked above; standardizers, gate may be absent

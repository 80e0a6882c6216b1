"""Unit tests of model folders: save_model / load_model round trip and every refusal."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch
import yaml
from safetensors import safe_open
from safetensors.torch import save_file

from omnifuse.artifacts.folder import (
    ASSETS,
    CONFIG,
    PREPROCESSORS,
    REQUIRED,
    WEIGHTS,
    LoadedModel,
    architecture_fingerprint,
    load_model,
    save_model,
    write_json,
)
from omnifuse.artifacts.manifest import write_manifest
from omnifuse.build import build_model, make_preprocessors
from omnifuse.config.sections import Config
from omnifuse.data.collate import Batch, collate
from omnifuse.data.dataset import attach_targets, fit_values, input_specs, make_examples
from omnifuse.data.preprocess.base import Preprocessor
from omnifuse.errors import ModelDirError
from omnifuse.model import MultimodalModel
from omnifuse.tasks import make_task
from omnifuse.tasks.base import Task
from omnifuse.version import __version__

FRAME = pd.DataFrame(
    {
        "review": ["good film", "bad film", "great fun", "awful plot", "good plot", "bad acting"],
        "age": [1.0, 2.0, None, 4.0, 5.0, 6.0],
        "city": ["a", "b", "a", None, "c", "b"],
        "y": ["pos", "neg", "pos", "neg", "pos", "neg"],
    }
)


def _config(hidden: int = 6, fusion: str = "concat") -> Config:
    return Config.from_dict(
        {
            "label": {"column": "y", "task": "multiclass"},
            "columns": {
                "review": {"type": "text", "encoder": {"name": "bow", "embed_dim": 8}},
                "age": {"type": "numeric"},
                "city": {"type": "categorical"},
            },
            "tabular": {"name": "tabular_mlp", "embed_dim": 4, "hidden_dim": 8},
            "fusion": fusion,
            "head": {"hidden_dim": hidden},
        }
    )


def _parts(cfg: Config) -> tuple[dict[str, Preprocessor], Task, MultimodalModel]:
    preprocessors = make_preprocessors(cfg)
    for spec in input_specs(cfg):
        preprocessors[spec.name].fit(fit_values(spec, FRAME, Path(".")))
    task = make_task("multiclass")
    task.fit(list(FRAME["y"]))
    return preprocessors, task, build_model(cfg, preprocessors, task)


def _batch(cfg: Config, preprocessors: dict[str, Preprocessor], task: Task) -> Batch:
    examples, _ = make_examples(FRAME, input_specs(cfg), preprocessors, cfg, Path("."))
    examples, _ = attach_targets(examples, FRAME["y"], task, "y")
    return collate(examples)


def _save(
    folder: Path, hidden: int = 6, fusion: str = "concat"
) -> tuple[Config, dict[str, Preprocessor], Task, MultimodalModel]:
    cfg = _config(hidden, fusion)
    preprocessors, task, model = _parts(cfg)
    save_model(folder, cfg, preprocessors, task, model)
    return cfg, preprocessors, task, model


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("models") / "model"
    return folder, _save(folder)


@pytest.fixture
def copy(saved: tuple[Path, Any], tmp_path: Path) -> Path:
    """A private copy of the saved model folder, free to damage."""
    folder = tmp_path / "model"
    shutil.copytree(saved[0], folder)
    return folder


def _load_resigned(folder: Path) -> LoadedModel:
    """Loads after re-writing manifest.json, so the checks behind it (tests/unit/test_manifest.py) are
    reached: as if the files had been edited by someone who also updated the manifest."""
    write_manifest(folder, REQUIRED, ASSETS)
    return load_model(folder)


def test_folder_contents_and_no_pickle(saved: tuple[Path, Any]) -> None:
    folder, (_, _, _, model) = saved
    for name in (CONFIG, PREPROCESSORS, WEIGHTS):
        assert (folder / name).is_file()
    assert (folder / ASSETS / "review" / "preprocessor").is_dir()
    assert (folder / ASSETS / "tabular" / "encoder").is_dir()
    suffixes = {p.suffix for p in folder.rglob("*") if p.is_file()}
    assert not suffixes & {".pt", ".pth", ".pkl", ".pickle", ".bin"}
    state = json.loads((folder / PREPROCESSORS).read_text())
    assert state["omnifuse_version"] == __version__
    assert state["task"] == {"name": "multiclass", "classes": ["neg", "pos"]}
    assert state["inputs"]["review"]["encoder"] == "bow"
    assert state["inputs"]["tabular"]["encoder"] == "tabular_mlp"
    with safe_open(str(folder / WEIGHTS), framework="pt") as handle:
        metadata = handle.metadata()
    assert metadata == {"omnifuse_version": __version__, "architecture": architecture_fingerprint(model)}
    assert not [p for p in folder.rglob(".*.tmp")]  # atomic writes cleaned up


def test_round_trip_gives_identical_outputs(saved: tuple[Path, Any]) -> None:
    folder, (cfg, preprocessors, task, model) = saved
    loaded = load_model(folder)
    assert isinstance(loaded, LoadedModel)
    assert loaded.config == cfg
    assert loaded.task == task
    assert loaded.folder == folder
    assert not loaded.model.training
    for name, pre in preprocessors.items():
        assert loaded.preprocessors[name].state_dict() == pre.state_dict()
    model.eval()
    batch = _batch(cfg, preprocessors, task)
    loaded_batch = _batch(loaded.config, loaded.preprocessors, loaded.task)  # rebuilt preprocessing
    for name in batch.inputs:
        for key, value in batch.inputs[name].items():
            assert torch.equal(loaded_batch.inputs[name][key], value)
    with torch.no_grad():
        expected = model(batch.inputs, batch.presence)
        actual = loaded.model(loaded_batch.inputs, loaded_batch.presence)
    assert torch.equal(expected, actual)
    saved_state = loaded.model.state_dict()
    assert set(saved_state) == {k for k in model.state_dict() if not k.startswith("aux_heads.")}
    assert any(k.startswith("aux_heads.") for k in model.state_dict())  # trained with, saved without
    for key, value in saved_state.items():
        assert torch.equal(model.state_dict()[key], value)


def test_load_accepts_a_string_path(saved: tuple[Path, Any]) -> None:
    assert load_model(str(saved[0])).folder == saved[0]


def test_architecture_fingerprint() -> None:
    torch.manual_seed(1)
    a = _parts(_config())[2]
    torch.manual_seed(2)
    b = _parts(_config())[2]
    assert architecture_fingerprint(a) == architecture_fingerprint(b)  # weights differ, shapes do not
    assert architecture_fingerprint(a) != architecture_fingerprint(_parts(_config(hidden=7))[2])
    assert len(architecture_fingerprint(a)) == 16


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(
        ModelDirError, match=r"model folder '.*nowhere' does not exist; pass the --out folder"
    ):
        load_model(tmp_path / "nowhere")


@pytest.mark.parametrize("name", [CONFIG, PREPROCESSORS, WEIGHTS])
def test_missing_file(copy: Path, name: str) -> None:
    (copy / name).unlink()
    with pytest.raises(
        ModelDirError,
        match=rf"model folder '.*' is incomplete: missing {name}; "
        r"was training interrupted\?",
    ):
        _load_resigned(copy)


def test_missing_two_files_lists_both(copy: Path) -> None:
    (copy / CONFIG).unlink()
    (copy / WEIGHTS).unlink()
    with pytest.raises(ModelDirError, match=rf"missing {CONFIG}, {WEIGHTS};"):
        _load_resigned(copy)


def _edit_json(folder: Path, edit: Any) -> None:
    path = folder / PREPROCESSORS
    state = json.loads(path.read_text())
    edit(state)
    path.write_text(json.dumps(state))


def test_tampered_encoder_name(copy: Path) -> None:
    _edit_json(copy, lambda s: s["inputs"]["review"].update(encoder="textcnn"))
    with pytest.raises(
        ModelDirError,
        match=r"preprocessors\.json: input 'review' was preprocessed for encoder "
        r"'textcnn' but config\.yaml uses 'bow'",
    ):
        _load_resigned(copy)


def test_config_edited_to_another_encoder(copy: Path) -> None:
    raw = yaml.safe_load((copy / CONFIG).read_text())
    raw["columns"]["review"]["encoder"] = {"name": "textcnn", "embed_dim": 8, "num_filters": 2}
    (copy / CONFIG).write_text(yaml.safe_dump(raw))
    with pytest.raises(
        ModelDirError, match=r"was preprocessed for encoder 'bow' but config\.yaml uses 'textcnn'"
    ):
        _load_resigned(copy)


def test_incompatible_version(copy: Path) -> None:
    _edit_json(copy, lambda s: s.update(omnifuse_version="99.0.0"))
    with pytest.raises(
        ModelDirError,
        match=rf"was saved by omnifuse 99\.0\.0, this is {__version__}; "
        r"install omnifuse==99\.0\.0 to load it, or re-train",
    ):
        _load_resigned(copy)


def test_missing_version_is_incompatible(copy: Path) -> None:
    _edit_json(copy, lambda s: s.pop("omnifuse_version"))
    with pytest.raises(ModelDirError, match=r"saved by omnifuse unknown"):
        _load_resigned(copy)


def test_patch_release_is_compatible(copy: Path) -> None:
    major, minor, _ = __version__.split(".")
    _edit_json(copy, lambda s: s.update(omnifuse_version=f"{major}.{minor}.99"))
    assert _load_resigned(copy).task.classes == ["neg", "pos"]


def test_version_checked_before_config(copy: Path) -> None:
    _edit_json(copy, lambda s: s.update(omnifuse_version="99.0.0"))
    raw = yaml.safe_load((copy / CONFIG).read_text())
    raw["training"]["a_key_from_the_future"] = 1
    (copy / CONFIG).write_text(yaml.safe_dump(raw))
    with pytest.raises(ModelDirError, match=r"was saved by omnifuse 99\.0\.0"):
        _load_resigned(copy)


def test_inputs_do_not_match_config(copy: Path) -> None:
    _edit_json(copy, lambda s: s["inputs"].pop("tabular"))
    with pytest.raises(
        ModelDirError,
        match=r"describes inputs \['review'\] but config\.yaml has "
        r"\['review', 'tabular'\]; the files do not belong together",
    ):
        _load_resigned(copy)


def test_damaged_preprocessor_state(copy: Path) -> None:
    _edit_json(copy, lambda s: s["inputs"]["review"]["state"].pop("vocab"))
    with pytest.raises(
        ModelDirError,
        match=r"the preprocessor of input 'review' cannot be restored "
        r"\(KeyError: 'vocab'\); restore the model folder",
    ):
        _load_resigned(copy)


def test_damaged_task_state(copy: Path) -> None:
    _edit_json(copy, lambda s: s.update(task={"name": "ranking"}))
    with pytest.raises(
        ModelDirError,
        match=r"preprocessors\.json: the task state is damaged \(.*unknown task "
        r"'ranking'.*\); re-train or restore",
    ):
        _load_resigned(copy)


def test_corrupt_json(copy: Path) -> None:
    (copy / PREPROCESSORS).write_text('{"omnifuse_version": "0.1.0", "inputs": {')
    with pytest.raises(
        ModelDirError,
        match=r"preprocessors\.json is not valid JSON \(.*\); restore it from the "
        r"original model folder",
    ):
        _load_resigned(copy)


def test_binary_garbage_json(copy: Path) -> None:
    (copy / PREPROCESSORS).write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ModelDirError, match=r"is not valid JSON"):
        _load_resigned(copy)


def test_json_that_is_not_an_object(copy: Path) -> None:
    (copy / PREPROCESSORS).write_text("[]")
    with pytest.raises(
        ModelDirError,
        match=r"preprocessors\.json should hold a JSON object, found list; "
        r"restore it from the original model folder",
    ):
        _load_resigned(copy)


def test_invalid_config_yaml(copy: Path) -> None:
    (copy / CONFIG).write_text("label: {column: y, task: multiclas}\ncolumns: {review: {type: text}}\n")
    with pytest.raises(
        ModelDirError,
        match=r"(?s)config\.yaml is not a valid omnifuse config:\n"
        r"invalid configuration \(1 problem\(s\)\).*label\.task",
    ):
        _load_resigned(copy)


def test_truncated_safetensors(copy: Path) -> None:
    data = (copy / WEIGHTS).read_bytes()
    (copy / WEIGHTS).write_bytes(data[: len(data) // 2])
    with pytest.raises(
        ModelDirError,
        match=r"model\.safetensors cannot be read \(.*\); restore it from the "
        r"original model folder",
    ):
        _load_resigned(copy)


def test_empty_safetensors(copy: Path) -> None:
    (copy / WEIGHTS).write_bytes(b"")
    with pytest.raises(ModelDirError, match=r"model\.safetensors cannot be read"):
        _load_resigned(copy)


@pytest.mark.parametrize(("hidden", "fusion"), [(7, "concat"), (6, "weighted_sum")])
def test_weights_of_another_architecture(copy: Path, tmp_path: Path, hidden: int, fusion: str) -> None:
    other = tmp_path / "other"
    _save(other, hidden=hidden, fusion=fusion)
    shutil.copyfile(other / WEIGHTS, copy / WEIGHTS)
    with pytest.raises(
        ModelDirError,
        match=r"model\.safetensors holds weights for another architecture than "
        r"config\.yaml and preprocessors\.json describe \(first differences: "
        r"\[.+\]\); the files do not belong together",
    ):
        _load_resigned(copy)


def test_vocabulary_edited_to_another_size(copy: Path) -> None:
    _edit_json(copy, lambda s: s["inputs"]["review"]["state"]["vocab"].append("extra"))
    with pytest.raises(
        ModelDirError, match=r"holds weights for another architecture.*encoders\.review\.embed"
    ):
        _load_resigned(copy)


def test_save_over_an_existing_folder_replaces_files(copy: Path) -> None:
    cfg, preprocessors, task, model = _save(copy, hidden=7)
    loaded = _load_resigned(copy)
    assert loaded.config.head.hidden_dim == 7
    assert architecture_fingerprint(loaded.model) == architecture_fingerprint(model)


def test_write_json(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "m.json"
    write_json(path, {"a": 1.5, "where": Path("/x")})
    assert json.loads(path.read_text()) == {"a": 1.5, "where": "/x"}
    assert path.read_text().startswith("{\n  ")  # pretty
    assert [p.name for p in path.parent.iterdir()] == ["m.json"]


def _frozen_review(folder: Path) -> tuple[Config, MultimodalModel]:
    """A model whose review encoder is frozen for the whole run, its standardizer fitted, saved."""
    raw = _config().to_dict()
    raw["columns"]["review"]["encoder"]["freeze_epochs"] = -1
    raw["training"]["standardize_frozen"] = True
    cfg = Config.from_dict(raw)
    preprocessors, task, model = _parts(cfg)
    model.standardizers["review"].fit(torch.randn(10, 8) * 3 + 1)
    save_model(folder, cfg, preprocessors, task, model)
    return cfg, model


def test_frozen_inputs_standardizer_is_saved_and_restored(tmp_path: Path) -> None:
    _, model = _frozen_review(tmp_path / "model")
    assert list(model.standardizers) == ["review"]  # the tabular encoder trains: none
    loaded = load_model(tmp_path / "model").model
    restored, fitted = loaded.standardizers["review"], model.standardizers["review"]
    assert torch.equal(restored.mean, fitted.mean) and torch.equal(restored.scale, fitted.scale)


def test_a_folder_saved_without_standardizers_loads_them_as_the_identity(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    _frozen_review(folder)
    with safe_open(str(folder / WEIGHTS), framework="pt") as handle:
        metadata = handle.metadata()
        weights = {k: handle.get_tensor(k) for k in handle.keys() if not k.startswith("standardizers.")}
    save_file(weights, str(folder / WEIGHTS), metadata=metadata)
    loaded = _load_resigned(folder).model
    assert torch.equal(loaded.standardizers["review"].scale, torch.ones(8))
    assert torch.equal(loaded.standardizers["review"].mean, torch.zeros(8))

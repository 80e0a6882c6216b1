"""Loading a model folder never unpickles: planted pickles are refused by the manifest or never read."""

from __future__ import annotations

import pickle
import re
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch

import omnifuse
from omnifuse.artifacts.folder import ASSETS, REQUIRED, WEIGHTS, save_model
from omnifuse.artifacts.manifest import write_manifest
from omnifuse.build import build_model, make_preprocessors
from omnifuse.config.sections import Config
from omnifuse.data.dataset import fit_values, input_specs
from omnifuse.errors import ModelDirError
from omnifuse.tasks import make_task

FRAME = pd.DataFrame(
    {"review": ["good film", "bad film", "great fun", "awful plot"], "y": ["p", "n", "p", "n"]}
)
SRC = Path(__file__).resolve().parents[3] / "src" / "omnifuse"


class Bomb:
    """Unpickling it runs ``exec``, which creates the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",))


def _bomb_bytes(marker: Path) -> bytes:
    return pickle.dumps(Bomb(marker))


def _torch_bomb(path: Path, marker: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state": Bomb(marker)}, path)


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("safety") / "model"
    cfg = Config.from_dict(
        {
            "label": {"column": "y", "task": "binary"},
            "columns": {"review": {"type": "text", "encoder": {"name": "bow", "embed_dim": 4}}},
            "fusion": "concat",
            "head": {"hidden_dim": 0},
        }
    )
    preprocessors = make_preprocessors(cfg)
    for spec in input_specs(cfg):
        preprocessors[spec.name].fit(fit_values(spec, FRAME, Path(".")))
    task = make_task("binary")
    task.fit(list(FRAME["y"]))
    save_model(folder, cfg, preprocessors, task, build_model(cfg, preprocessors, task))
    return folder


@pytest.fixture
def copy(saved: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    shutil.copytree(saved, folder)
    return folder


def test_the_bombs_are_live(tmp_path: Path) -> None:
    """Without this the tests below would prove nothing."""
    marker = tmp_path / "marker"
    pickle.loads(_bomb_bytes(marker))
    assert marker.read_text() == "pwned"
    marker.unlink()
    _torch_bomb(tmp_path / "x.pt", marker)
    torch.load(tmp_path / "x.pt", weights_only=False)
    assert marker.exists()


@pytest.mark.parametrize("name", ["model.pt", "pytorch_model.bin", "weights.pkl", "checkpoints/last.pt"])
def test_pickles_outside_assets_are_never_read(copy: Path, tmp_path: Path, name: str) -> None:
    marker = tmp_path / "marker"
    if name.endswith(".pt"):
        _torch_bomb(copy / name, marker)
    else:
        (copy / name).write_bytes(_bomb_bytes(marker))
    predictor = omnifuse.load(copy)  # ignored: load reads only the files manifest.json lists
    assert predictor.predict({"review": "good film"}) in {"p", "n"}
    assert not marker.exists()


@pytest.mark.parametrize(
    "name",
    ["review/encoder/pytorch_model.bin", "review/encoder/model.pt", "review/preprocessor/vocab.pkl", "x.bin"],
)
def test_pickles_under_assets_are_refused(copy: Path, tmp_path: Path, name: str) -> None:
    marker = tmp_path / "marker"
    (copy / ASSETS / name).parent.mkdir(parents=True, exist_ok=True)
    (copy / ASSETS / name).write_bytes(_bomb_bytes(marker))
    with pytest.raises(
        ModelDirError, match=rf"unexpected file {re.escape(ASSETS + '/' + name)} \(not in manifest"
    ):
        omnifuse.load(copy)
    assert not marker.exists()


def test_weights_replaced_by_a_pickle_are_refused(copy: Path, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    _torch_bomb(copy / WEIGHTS, marker)
    with pytest.raises(ModelDirError, match=r"tampered or damaged: model\.safetensors"):
        omnifuse.load(copy)
    assert not marker.exists()


def test_weights_replaced_by_a_pickle_with_a_forged_manifest(copy: Path, tmp_path: Path) -> None:
    """The manifest is a checksum, not a signature: safety comes from never unpickling."""
    marker = tmp_path / "marker"
    _torch_bomb(copy / WEIGHTS, marker)
    write_manifest(copy, REQUIRED, ASSETS)
    with pytest.raises(ModelDirError, match=r"model\.safetensors cannot be read"):
        omnifuse.load(copy)
    assert not marker.exists()


def _tiny_hf_configs() -> dict[str, object]:
    from transformers import BertConfig, ViTConfig, Wav2Vec2Config

    small: dict[str, Any] = {
        "hidden_size": 8,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "intermediate_size": 8,
    }
    return {
        "text": BertConfig(vocab_size=10, **small),
        "image": ViTConfig(image_size=8, patch_size=4, **small),
        "audio": Wav2Vec2Config(
            conv_dim=(4,),
            conv_stride=(5,),
            conv_kernel=(10,),
            num_conv_pos_embeddings=4,
            num_conv_pos_embedding_groups=2,
            vocab_size=5,
            **small,
        ),
    }


@pytest.mark.parametrize("modality", ["text", "image", "audio"])
def test_hf_encoders_rebuild_from_config_only(tmp_path: Path, modality: str) -> None:
    """Even past the manifest, a saved HF encoder reads config.json only, never weight files."""
    from omnifuse.encoders.audio import load_hf_audio_backbone
    from omnifuse.encoders.image import load_hf_vision_model
    from omnifuse.encoders.text import load_hf_model

    assets, marker = tmp_path / "encoder", tmp_path / "marker"
    _tiny_hf_configs()[modality].save_pretrained(str(assets))  # type: ignore[attr-defined]
    for name in ("pytorch_model.bin", "model.safetensors", "tf_model.h5"):
        (assets / name).write_bytes(_bomb_bytes(marker))
    loader = {"text": load_hf_model, "image": load_hf_vision_model, "audio": load_hf_audio_backbone}[modality]
    net = loader("no-such-hub-model", assets)
    assert isinstance(net, torch.nn.Module)
    assert not marker.exists()


def test_no_pickle_loaders_in_the_code_base() -> None:
    """Every torch.load passes weights_only=True; no pickle/joblib/np.load(allow_pickle) at all."""
    forbidden = re.compile(r"\bpickle\.loads?\(|\bjoblib\b|allow_pickle\s*=\s*True|\bdill\b|\bcloudpickle\b")
    for path in SRC.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert not forbidden.search(text), path
        for call in re.findall(r"torch\.load\([^)]*\)", text):
            assert "weights_only=True" in call, f"{path}: {call}"

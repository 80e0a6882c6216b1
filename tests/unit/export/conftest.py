"""Tiny untrained models for the export tests, built from configs and fitted on generated cells."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from omnifuse.build import build_model, make_preprocessors
from omnifuse.config.sections import Config
from omnifuse.data.dataset import input_specs
from omnifuse.data.preprocess.base import Preprocessor
from omnifuse.encoders.base import InputSpec
from omnifuse.export.samples import sample_cell
from omnifuse.model import MultimodalModel
from omnifuse.tasks import make_task

# The fusion sweep's inputs: an image (tokens, no mask) and a numeric column (the tabular input: tokens with
# a mask), tiny; SOUND adds audio frames (tokens with a ragged mask), at twice the export time.
PHOTO = {"type": "image", "encoder": {"name": "small_cnn", "size": 8, "channels": 1, "widths": [4]}}
SOUND = {
    "type": "audio",
    "encoder": {"name": "mel_cnn", "n_mels": 8, "channels": 4, "num_blocks": 1, "output_dim": 8,
                "max_seconds": 0.5},
}


@dataclass
class Tiny:
    """A built model with what ``export_model`` needs."""

    model: MultimodalModel
    specs: list[InputSpec]
    preprocessors: dict[str, Preprocessor]
    encoders: dict[str, str]


def build_tiny(
    columns: dict[str, Any], fusion: str = "concat", tabular: dict[str, Any] | None = None
) -> Tiny:
    """An untrained model over ``columns`` (config entries), preprocessors fitted on generated cells."""
    raw: dict[str, Any] = {
        "label": {"column": "y", "task": "multiclass"},
        "columns": columns,
        "fusion": {"name": fusion},
        "tabular": tabular or {"name": "tabular_mlp", "embed_dim": 4, "hidden_dim": 8},
    }
    config = Config.from_dict(raw)
    preprocessors = make_preprocessors(config)
    specs = input_specs(config)
    rng = np.random.default_rng(1)
    for spec in specs:
        pre = preprocessors[spec.name]
        pre.fit([sample_cell(spec, pre, row, rng) for row in range(4)])
    task = make_task("multiclass")
    task.fit(["a", "b", "c"])
    model = build_model(config, preprocessors, task).eval()
    return Tiny(model, specs, preprocessors, {s.name: config.encoder_of(s.name).name for s in specs})


@pytest.fixture
def tiny() -> Callable[..., Tiny]:
    """``build_tiny`` as a fixture (test modules do not import each other here)."""
    return build_tiny


@pytest.fixture
def fusion_model() -> Callable[..., Tiny]:
    """The fusion sweep's model: photo + a numeric column (or photo + sound) into the named fusion."""

    def build(fusion: str, sound: bool = False) -> Tiny:
        second = {"sound": SOUND} if sound else {"weight": {"type": "numeric"}}
        return build_tiny({"photo": PHOTO, **second}, fusion)

    return build


@pytest.fixture(scope="session")
def hf_folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Tiny Hugging Face model folders (BERT with a word-piece vocabulary, ViT, wav2vec2), random weights."""
    import json

    import torch
    from transformers import (
        BertConfig,
        BertModel,
        BertTokenizer,
        ViTConfig,
        ViTModel,
        Wav2Vec2Config,
        Wav2Vec2FeatureExtractor,
        Wav2Vec2Model,
    )

    from omnifuse.export.samples import WORDS

    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("hf")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
    small = {"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 20}
    BertModel(BertConfig(vocab_size=len(vocab), **small)).save_pretrained(str(root / "bert"))
    BertTokenizer(vocab={w: i for i, w in enumerate(vocab)}).save_pretrained(str(root / "bert"))
    ViTModel(ViTConfig(image_size=16, patch_size=8, **small)).save_pretrained(str(root / "vit"))
    processor = {"size": {"height": 16, "width": 16}, "image_mean": [0.5] * 3, "image_std": [0.25] * 3}
    (root / "vit" / "preprocessor_config.json").write_text(json.dumps(processor), encoding="utf-8")
    wav = Wav2Vec2Config(
        conv_dim=(8, 8), conv_stride=(5, 4), conv_kernel=(10, 4), conv_bias=True, num_conv_pos_embeddings=8,
        num_conv_pos_embedding_groups=2, vocab_size=12, feat_extract_norm="layer",
        **{**small, "intermediate_size": 32},
    )
    Wav2Vec2Model(wav).save_pretrained(str(root / "wav2vec2"))
    Wav2Vec2FeatureExtractor(return_attention_mask=True).save_pretrained(str(root / "wav2vec2"))
    return {name: str(root / name) for name in ("bert", "vit", "wav2vec2")}

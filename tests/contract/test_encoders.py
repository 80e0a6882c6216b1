"""Contract tests over every registered encoder: preprocessing, shapes, gradients, missing rows, save/load.

Every name in ``ENCODERS`` needs an entry in ``CASES`` (tiny options for its modality); a new encoder without
one fails ``test_every_registered_encoder_has_a_contract_case`` and every parametrized test below.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile
import torch
from PIL import Image
from safetensors.torch import load_file, save_file
from torch import Tensor

import omnifuse.catalog  # noqa: F401  (fills the registries)
from omnifuse.data.collate import Example, collate
from omnifuse.data.preprocess.base import Preprocessor
from omnifuse.encoders.base import ENCODERS, Encoder, EncoderOutput, EncoderSpec, InputSpec

MODALITIES = {"text", "image", "audio", "video", "tabular"}
TEXTS = ["the cat sat on the mat", "a dog", "the dog sat on a cat on a mat"]
WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat", "dog", "a"]
TABULAR_ROWS: list[dict[str, Any]] = [
    {"age": 31.0, "city": "paris"},
    {"age": None, "city": "rome"},  # a missing number
    {"age": 58.5, "city": None},  # a missing category
    {"age": 44.0, "city": "paris"},
]
INPUTS = {
    "text": InputSpec(name="review", modality="text", columns={"review": "text"}),
    "image": InputSpec(name="photo", modality="image", columns={"photo": "image"}),
    "audio": InputSpec(name="clip", modality="audio", columns={"clip": "audio"}),
    "tabular": InputSpec(
        name="tabular", modality="tabular", columns={"age": "numeric", "city": "categorical"}
    ),
}


@dataclasses.dataclass(frozen=True)
class Samples:
    """Files the cases read: tiny Hugging Face model folders and sample media, made once per session."""

    bert: Path
    vit: Path
    wav2vec2: Path
    images: list[Path]
    clips: list[Path]

    def values(self, modality: str) -> list[Any]:
        """Sample cell values of ``modality`` (paths for media, strings, or tabular row dicts)."""
        by_modality: dict[str, list[Any]] = {
            "text": list(TEXTS),
            "image": list(self.images),
            "audio": list(self.clips),
            "tabular": [dict(row) for row in TABULAR_ROWS],
        }
        return by_modality[modality]


@dataclasses.dataclass(frozen=True)
class Case:
    """How to exercise one encoder: its modality and tiny options (a function of the sample folders)."""

    modality: str
    options: Callable[[Samples], dict[str, Any]]


# One entry per registered encoder (a list: several variants may run the same checks). Tiny dims throughout.
CASES: dict[str, dict[str, Case]] = {
    "bilstm": {"tiny": Case("text", lambda s: {"embed_dim": 8, "hidden_dim": 4, "num_layers": 2})},
    "bow": {"tiny": Case("text", lambda s: {"embed_dim": 8})},
    "lm_prompt": {"tiny_decoder_words": Case("text", lambda s: {"max_tokens": 6})},
    "tfidf": {"tiny": Case("text", lambda s: {"embed_dim": 8, "min_df": 1, "char_max": 3})},
    "textcnn": {"tiny": Case("text", lambda s: {"embed_dim": 8, "num_filters": 3, "kernel_sizes": (2, 3)})},
    "hf_text": {"tiny_bert": Case("text", lambda s: {"model": str(s.bert), "max_length": 8})},
    "small_cnn": {"tiny": Case("image", lambda s: {"size": 16, "widths": [4, 8]})},
    "efficientnet_lite0": {
        "random": Case("image", lambda s: {"size": 32, "pretrained": False}),
        "packaged_weights": Case("image", lambda s: {"size": 32, "pretrained": True, "channels": 1}),
    },
    "hf_image": {"tiny_vit": Case("image", lambda s: {"model": str(s.vit)})},
    "mel_cnn": {
        "tiny": Case("audio", lambda s: {"n_mels": 8, "channels": 4, "num_blocks": 2, "output_dim": 8})
    },
    "mel_lstm": {"tiny": Case("audio", lambda s: {"n_mels": 8, "hidden_dim": 4, "stack_frames": 2})},
    "mfcc_stats": {
        "tiny": Case("audio", lambda s: {"n_mels": 8, "n_mfcc": 4, "segments": 2, "hidden_dim": 8,
                                         "output_dim": 6}),
        "linear": Case("audio", lambda s: {"n_mels": 8, "n_mfcc": 4, "segments": 2, "hidden_dim": 0,
                                           "input_dropout": 0.3, "output_dim": 6}),
    },
    "hf_audio": {"tiny_wav2vec2": Case("audio", lambda s: {"model": str(s.wav2vec2), "max_seconds": 1.0})},
    "tabular_mlp": {"tiny": Case("tabular", lambda s: {"embed_dim": 4, "hidden_dim": 8})},
}

# Every registered encoder, with its variants; a registered name without a case gets one failing entry.
PARAMS = [
    pytest.param(name, variant, id=f"{name}-{variant}")
    for name in ENCODERS.names()
    for variant in (CASES[name] if name in CASES else ["MISSING_CASE"])
]


# -- sample files ---------------------------------------------------------------------------------------


def _save_bert(folder: Path) -> None:
    from transformers import BertConfig, BertModel, BertTokenizer

    config = BertConfig(
        vocab_size=len(WORDS),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=20,
    )
    BertModel(config).save_pretrained(str(folder))
    BertTokenizer(vocab={w: i for i, w in enumerate(WORDS)}).save_pretrained(str(folder))


def _save_vit(folder: Path) -> None:
    from transformers import ViTConfig, ViTModel

    config = ViTConfig(
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=20,
        image_size=16,
        patch_size=8,
    )
    ViTModel(config).save_pretrained(str(folder))
    processor = {
        "size": {"height": 16, "width": 16},
        "image_mean": [0.1, 0.2, 0.3],
        "image_std": [0.2, 0.2, 0.2],
    }
    (folder / "preprocessor_config.json").write_text(json.dumps(processor), encoding="utf-8")


def _save_wav2vec2(folder: Path) -> None:
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    config = Wav2Vec2Config(
        conv_dim=(8, 8),
        conv_stride=(5, 4),
        conv_kernel=(10, 4),
        conv_bias=True,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        num_conv_pos_embeddings=8,
        num_conv_pos_embedding_groups=2,
        vocab_size=12,
        feat_extract_norm="layer",
    )
    Wav2Vec2Model(config).save_pretrained(str(folder))
    Wav2Vec2FeatureExtractor(return_attention_mask=True).save_pretrained(str(folder))


def _write_images(folder: Path) -> list[Path]:
    """Three PNGs of different sizes and modes (RGB, grayscale, RGBA)."""
    rng = np.random.default_rng(0)
    images = [
        Image.fromarray(rng.integers(0, 256, (20, 30, 3), dtype=np.uint8), "RGB"),
        Image.fromarray(rng.integers(0, 256, (12, 12), dtype=np.uint8), "L"),
        Image.fromarray(rng.integers(0, 256, (40, 24, 4), dtype=np.uint8), "RGBA"),
    ]
    paths = [folder / f"image{i}.png" for i in range(len(images))]
    for image, path in zip(images, paths, strict=True):
        image.save(path)
    return paths


def _write_clips(folder: Path) -> list[Path]:
    """Three WAVs of different lengths, rates (resampled to 16 kHz) and channel counts."""
    rng = np.random.default_rng(0)
    shapes = [(16000, 0.25, 1), (8000, 0.1, 2), (16000, 0.15, 1)]  # (rate, seconds, channels)
    paths = []
    for i, (rate, seconds, channels) in enumerate(shapes):
        t = np.arange(int(rate * seconds)) / rate
        wave = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(t.size)  # (S,)
        data = np.repeat(wave[:, None], channels, axis=1).astype(np.float32)  # (S, C)
        path = folder / f"clip{i}.wav"
        soundfile.write(str(path), data, rate)
        paths.append(path)
    return paths


@pytest.fixture(scope="session")
def samples(tmp_path_factory: pytest.TempPathFactory) -> Samples:
    """Tiny models and media files, written once for the whole session."""
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("encoder_contract")
    folders = {name: root / name for name in ("bert", "vit", "wav2vec2", "media")}
    for folder in folders.values():
        folder.mkdir()
    _save_bert(folders["bert"])
    _save_vit(folders["vit"])
    _save_wav2vec2(folders["wav2vec2"])
    media = folders["media"]
    return Samples(
        folders["bert"], folders["vit"], folders["wav2vec2"], _write_images(media), _write_clips(media)
    )


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """One intra-op thread: on a busy 2-core machine OpenMP barriers make small convolutions 100x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# -- helpers -------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Setup:
    """A case made concrete: spec, options, input, values and a fitted preprocessor."""

    spec: EncoderSpec
    options: Any
    input: InputSpec
    values: list[Any]
    preprocessor: Preprocessor


def _case(name: str, variant: str) -> Case:
    case = CASES.get(name, {}).get(variant)
    if case is None:
        pytest.fail(
            f"encoder {name!r} is registered but has no entry in CASES of {__file__}; add tiny options"
        )
    return case


def _setup(name: str, variant: str, samples: Samples) -> Setup:
    case = _case(name, variant)
    spec = ENCODERS.get(name)
    options = spec.options(**case.options(samples))
    values = samples.values(case.modality)
    preprocessor = spec.make_preprocessor(options, INPUTS[case.modality])
    preprocessor.fit(values)
    return Setup(spec, options, INPUTS[case.modality], values, preprocessor)


def _batch(preprocessor: Preprocessor, values: list[Any], name: str) -> dict[str, Tensor]:
    """Collates the rows of ``values`` plus a blank (missing) row last."""
    rows = [preprocessor(v) for v in values] + [preprocessor.blank()]
    presence = [True] * len(values) + [False]
    examples = [
        Example(i, {name: row}, {name: p}) for i, (row, p) in enumerate(zip(rows, presence, strict=True))
    ]
    return collate(examples).inputs[name]


def _check_output(out: EncoderOutput, encoder: Encoder, rows: int) -> None:
    """Shapes, dtypes and finiteness of an EncoderOutput for a batch of ``rows`` (the last one blank)."""
    width = encoder.output_dim
    assert isinstance(width, int) and width > 0
    assert out.pooled.shape == (rows, width), f"pooled {tuple(out.pooled.shape)}, expected {(rows, width)}"
    assert out.pooled.dtype.is_floating_point and torch.isfinite(out.pooled).all(), "pooled is not finite"
    if out.tokens is None:
        assert out.mask is None, "a mask without tokens"
        return
    assert out.tokens.dim() == 3 and out.tokens.shape[0] == rows and out.tokens.shape[2] == width
    assert torch.isfinite(out.tokens).all(), "tokens are not finite"
    if out.mask is not None:
        assert out.mask.dtype == torch.bool and out.mask.shape == out.tokens.shape[:2]
        assert out.mask[:-1].any(dim=1).all(), "a present row has no real token"


def _offline_options(setup: Setup, folder: Path) -> Any:
    """The options, with ``model`` pointed at a missing folder: a saved model reads only its assets."""
    if "model" in {f.name for f in dataclasses.fields(setup.options)}:
        return dataclasses.replace(setup.options, model=str(folder / "original-model-is-gone"))
    return setup.options


def _restore_preprocessor(setup: Setup, folder: Path) -> Preprocessor:
    """A fresh preprocessor from the JSON text of the fitted one's state and the assets in ``folder``."""
    restored = setup.spec.make_preprocessor(_offline_options(setup, folder), setup.input)
    restored.load_state_dict(json.loads(json.dumps(setup.preprocessor.state_dict())))
    restored.load_assets(folder)
    return restored


# -- tests -------------------------------------------------------------------------------------------


def test_every_registered_encoder_has_a_contract_case() -> None:
    missing = sorted(set(ENCODERS.names()) - set(CASES))
    assert not missing, f"encoders without a contract case: {missing}; add them to CASES in {__file__}"
    stale = sorted(set(CASES) - set(ENCODERS.names()))
    assert not stale, f"contract cases for encoders that are not registered: {stale}; remove them"
    assert all(CASES.values()), "every CASES entry needs at least one variant"


@pytest.mark.parametrize(("name", "variant"), PARAMS)
def test_spec_options_summary_and_modality(name: str, variant: str) -> None:
    spec = ENCODERS.get(name)
    assert spec.modality in MODALITIES, f"{name}: modality {spec.modality!r} not one of {sorted(MODALITIES)}"
    assert spec.modality == _case(name, variant).modality
    assert spec.summary.strip(), f"{name}: empty summary"
    assert dataclasses.is_dataclass(spec.options)
    for field in dataclasses.fields(spec.options):
        has_default = (
            field.default is not dataclasses.MISSING or field.default_factory is not dataclasses.MISSING
        )
        assert has_default, f"{name}.{field.name} has no default"
    spec.options()


@pytest.mark.parametrize(("name", "variant"), PARAMS)
def test_preprocessor_rows_and_blank(name: str, variant: str, samples: Samples) -> None:
    setup = _setup(name, variant, samples)
    rows = [setup.preprocessor(v) for v in setup.values]
    blank = setup.preprocessor.blank()
    for row in [*rows, blank]:
        assert row and all(isinstance(t, Tensor) for t in row.values())
        assert set(row) == set(blank), f"keys {sorted(row)} differ from the blank row's {sorted(blank)}"
        for key, tensor in row.items():
            assert tensor.dtype == blank[key].dtype, f"{key}: {tensor.dtype} vs blank {blank[key].dtype}"
            assert tensor.shape[1:] == blank[key].shape[1:], f"{key}: only dim 0 may vary between rows"
            assert not tensor.is_floating_point() or torch.isfinite(tensor).all(), f"{key} is not finite"
    batch = _batch(setup.preprocessor, setup.values, setup.input.name)
    assert all(t.shape[0] == len(setup.values) + 1 for t in batch.values())


@pytest.mark.parametrize(("name", "variant"), PARAMS)
def test_forward_shapes_with_a_blank_row(name: str, variant: str, samples: Samples) -> None:
    setup = _setup(name, variant, samples)
    encoder = setup.spec.build(setup.options, setup.preprocessor, None)
    assert isinstance(encoder, Encoder)
    batch = _batch(setup.preprocessor, setup.values, setup.input.name)
    with torch.no_grad():
        for mode in (False, True):  # eval, then train (dropout, batch norm on the batch)
            out = encoder.train(mode)(batch)
            assert isinstance(out, EncoderOutput)
            _check_output(out, encoder, len(setup.values) + 1)


@pytest.mark.parametrize(("name", "variant"), PARAMS)
def test_backward_reaches_every_trainable_parameter(name: str, variant: str, samples: Samples) -> None:
    setup = _setup(name, variant, samples)
    encoder = setup.spec.build(setup.options, setup.preprocessor, None).train()
    out = encoder(_batch(setup.preprocessor, setup.values, setup.input.name))
    _check_output(out, encoder, len(setup.values) + 1)
    loss = out.pooled.sum() + (out.tokens.sum() if out.tokens is not None else 0.0)
    loss.backward()
    trainable = [(n, p) for n, p in encoder.named_parameters() if p.requires_grad]
    assert trainable, f"{name} has no trainable parameter"
    no_grad = [n for n, p in trainable if p.grad is None]
    assert not no_grad, f"no gradient reaches {no_grad}"
    not_finite = [n for n, p in trainable if p.grad is not None and not torch.isfinite(p.grad).all()]
    assert not not_finite, f"non-finite gradient in {not_finite}"


@pytest.mark.parametrize(("name", "variant"), PARAMS)
def test_preprocessor_state_and_assets_round_trip(
    name: str, variant: str, samples: Samples, tmp_path: Path
) -> None:
    setup = _setup(name, variant, samples)
    state = setup.preprocessor.state_dict()
    assert json.loads(json.dumps(state)) == state, "state_dict does not survive JSON unchanged"
    setup.preprocessor.save_assets(tmp_path)
    restored = _restore_preprocessor(setup, tmp_path)
    assert restored.state_dict() == state
    pairs = [(setup.preprocessor(v), restored(v)) for v in setup.values]
    pairs.append((setup.preprocessor.blank(), restored.blank()))
    for expected, got in pairs:
        assert set(got) == set(expected)
        for key in expected:
            assert got[key].dtype == expected[key].dtype
            torch.testing.assert_close(got[key], expected[key], rtol=0, atol=0)


@pytest.mark.parametrize(("name", "variant"), PARAMS)
def test_encoder_rebuilt_from_assets_loads_weights_strictly(
    name: str, variant: str, samples: Samples, tmp_path: Path
) -> None:
    setup = _setup(name, variant, samples)
    encoder = setup.spec.build(setup.options, setup.preprocessor, None)
    batch = _batch(setup.preprocessor, setup.values, setup.input.name)
    with torch.no_grad():
        encoder.train()(batch)  # moves batch-norm statistics away from their initial values
    assets = tmp_path / "assets"
    assets.mkdir()
    encoder.save_assets(assets)
    setup.preprocessor.save_assets(assets)
    save_file(encoder.state_dict(), str(tmp_path / "model.safetensors"))
    torch.manual_seed(1)  # the rebuilt encoder starts from other random weights
    restored_pre = _restore_preprocessor(setup, assets)
    rebuilt = setup.spec.build(_offline_options(setup, assets), restored_pre, assets)
    rebuilt.load_state_dict(load_file(str(tmp_path / "model.safetensors")), strict=True)
    assert rebuilt.output_dim == encoder.output_dim
    with torch.no_grad():
        expected = encoder.eval()(batch)
        got = rebuilt.eval()(_batch(restored_pre, setup.values, setup.input.name))
    for field, want in zip(EncoderOutput._fields, expected, strict=True):
        have = getattr(got, field)
        assert (have is None) == (want is None), f"{field}: present in only one of the outputs"
        if want is not None:
            torch.testing.assert_close(have, want, rtol=0, atol=0, msg=f"{field} differs after the rebuild")

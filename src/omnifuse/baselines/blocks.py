"""Feature blocks: per model input, the feature matrix of every split, ready for the models.

A block's rows are the rows the model's own preprocessing accepted (bad rows were handled by
``data.on_bad_row`` before), in the same order as the examples. Dense features are standardised with the
training rows' mean and std (a missing cell, ``allow_missing``, gets the training mean and, when training
has missing cells, a 0/1 flag column); TF-IDF rows are already L2-normalised. Every block is then scaled so
that its mean squared row norm on the training rows is 1: in the early-fusion model each input weighs the
same whatever its width, and one grid of regularisation strengths fits every block.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np
import scipy.sparse as sp
import torch

from omnifuse.baselines.features.audio import AudioFeatures
from omnifuse.baselines.features.embeddings import embed, is_pretrained
from omnifuse.baselines.features.image import image_features
from omnifuse.baselines.features.tabular import TabularFeatures
from omnifuse.baselines.features.text import TextFeatures
from omnifuse.config.sections import Config
from omnifuse.data.collate import Example
from omnifuse.data.dataset import FILE_MODALITIES, cell_column, input_specs
from omnifuse.data.io import check_inside, resolve_path
from omnifuse.data.preprocess.audio import LogMelPreprocessor, WaveformPreprocessor
from omnifuse.data.preprocess.base import Preprocessor
from omnifuse.data.preprocess.image import DEFAULT_MAX_PIXELS, ImagePreprocessor
from omnifuse.data.preprocess.tabular import TabularPreprocessor
from omnifuse.encoders.base import Encoder, InputSpec
from omnifuse.errors import BadValueError

Matrix: TypeAlias = np.ndarray | sp.csr_matrix
TRAIN = "train"


@dataclass
class SplitRows:
    """The rows of one split that the model's preprocessing accepted: examples and raw cells, same order."""

    examples: list[Example]
    records: list[dict[str, Any]]  # the table rows, column -> raw cell
    base_dir: Path  # the folder relative file paths are read from


@dataclass
class Block:
    """The features of one model input (or of the early fusion of several) on every split."""

    inputs: list[str]  # model input names
    features: str  # what the features are, e.g. "pixels+HOG"
    matrices: dict[str, Matrix]  # split -> (N, D)
    seconds: float  # time spent computing the features
    boosting: dict[str, np.ndarray] = field(default_factory=dict)  # tabular: split -> (N, K) for boosting
    categorical: np.ndarray | None = None  # tabular: (K,) bool, the category columns of ``boosting``


def unit_energy(matrices: dict[str, Matrix]) -> dict[str, Matrix]:
    """The matrices divided by the root mean squared row norm of the training matrix.

    Raises:
        ValueError: every training row is zero (no usable feature).
    """
    train = matrices[TRAIN]
    squares = sp.csr_matrix(train).multiply(train).sum() if sp.issparse(train) else np.square(train).sum()
    energy = float(squares) / train.shape[0]
    if energy <= 1e-12:
        raise ValueError("every training row has the same features (nothing to learn from)")
    return {split: m / np.sqrt(energy) for split, m in matrices.items()}


def standardise(rows: dict[str, list[np.ndarray | None]]) -> dict[str, np.ndarray]:
    """Stacks per-row vectors (None: missing) into standardised matrices, training statistics throughout.

    Raises:
        ValueError: no training row has a value.
    """
    present = [v for v in rows[TRAIN] if v is not None]
    if not present:
        raise ValueError("no training row has a usable value")
    dim = present[0].shape[0]
    blank = np.full(dim, np.nan)
    stacked = {s: np.stack([blank if v is None else v for v in vs]) if vs else np.zeros((0, dim))
               for s, vs in rows.items()}
    mean = np.nanmean(stacked[TRAIN], axis=0)  # (D,)
    std = np.nanstd(stacked[TRAIN], axis=0)
    std[std < 1e-12] = 1.0
    flag = any(v is None for v in rows[TRAIN])
    out = {}
    for split, matrix in stacked.items():
        missing = np.isnan(matrix).any(axis=1, keepdims=True)  # (N, 1)
        matrix = (np.where(np.isnan(matrix), mean, matrix) - mean) / std
        out[split] = np.hstack([matrix, missing.astype(np.float64)]) if flag else matrix
    return out


def cell_values(rows: SplitRows, spec: InputSpec, allow_outside: bool) -> list[Any]:
    """The raw cells of a media input, None where the row has no value; file paths resolved and checked
    against the path policy exactly as the model's preprocessing did."""
    values: list[Any] = []
    for example, record in zip(rows.examples, rows.records, strict=True):
        value = record[cell_column(spec)]
        if not example.presence[spec.name]:
            values.append(None)
        elif spec.modality in FILE_MODALITIES and not isinstance(value, (bytes, bytearray)):
            path = resolve_path(str(value), rows.base_dir)
            try:
                check_inside(path, rows.base_dir, allow_outside, shown=str(value))
            except BadValueError:  # the model's preprocessing let it through; the baseline never reads more
                values.append(None)
                continue
            values.append(path)
        else:
            values.append(bytes(value) if isinstance(value, bytearray) else value)
    return values


def featurize(values: Sequence[Any], fn: Callable[[Any], np.ndarray]) -> list[np.ndarray | None]:
    """``fn`` of each present value; None for missing values and for values ``fn`` cannot decode."""
    out: list[np.ndarray | None] = []
    for value in values:
        try:
            out.append(None if value is None else np.asarray(fn(value), dtype=np.float64))
        except BadValueError:
            out.append(None)
    return out


def media_featurizer(spec: InputSpec, pre: Preprocessor) -> tuple[str, Callable[[Any], np.ndarray]]:
    """(feature name, value -> vector) of an image or audio input, decoding as its preprocessor does."""
    if spec.modality == "image":
        limit = pre.max_pixels if isinstance(pre, ImagePreprocessor) else DEFAULT_MAX_PIXELS
        return "pixels+HOG", lambda value: image_features(value, limit)
    if isinstance(pre, LogMelPreprocessor):
        audio = AudioFeatures(pre.sample_rate, pre.max_seconds)
    else:
        audio = AudioFeatures(max_seconds=pre.max_seconds if isinstance(pre, WaveformPreprocessor) else 10.0)
    return "MFCC", audio


def classical_block(cfg: Config, spec: InputSpec, pre: Preprocessor, rows: dict[str, SplitRows]) -> Block:
    """The classical features of one input: pixels+HOG, MFCC, TF-IDF or the raw tabular columns.

    Raises:
        ValueError: the input has no usable feature (no value, one constant value, no n-gram, ...).
    """
    started = time.perf_counter()
    if spec.modality == "tabular":
        assert isinstance(pre, TabularPreprocessor), "the tabular input has a TabularPreprocessor"
        tabular = TabularFeatures(pre, spec.name).fit(rows[TRAIN].examples)
        linear = standardise({s: list(tabular.linear(r.examples)) for s, r in rows.items()})
        boosting = {s: tabular.boosting(r.examples) for s, r in rows.items()}
        return Block([spec.name], "raw columns", unit_energy(linear), time.perf_counter() - started,
                     boosting, tabular.categorical_mask())
    values = {s: cell_values(r, spec, cfg.data.allow_outside_paths) for s, r in rows.items()}
    if spec.modality == "text":
        texts = {s: ["" if v is None else str(v) for v in vs] for s, vs in values.items()}
        vectorizer = TextFeatures().fit(texts[TRAIN])
        matrices: dict[str, Matrix] = {s: vectorizer.transform(t) for s, t in texts.items()}
        return Block([spec.name], "TF-IDF", unit_energy(matrices), time.perf_counter() - started)
    name, fn = media_featurizer(spec, pre)
    with single_thread():
        vectors = {s: featurize(vs, fn) for s, vs in values.items()}
    return Block([spec.name], name, unit_energy(standardise(vectors)), time.perf_counter() - started)


def embedding_block(spec: InputSpec, encoder: Encoder, rows: dict[str, SplitRows], device: torch.device,
                    encoder_name: str) -> Block:
    """The frozen pretrained embeddings of one input (missing cells: the training mean and a flag)."""
    started = time.perf_counter()
    vectors = {}
    for split, r in rows.items():
        pooled = embed(encoder, r.examples, spec.name, device)  # (N, D)
        present = [ex.presence[spec.name] for ex in r.examples]
        vectors[split] = [v if keep else None for v, keep in zip(pooled, present, strict=True)]
    return Block([spec.name], f"{encoder_name} embeddings", unit_energy(standardise(vectors)),
                 time.perf_counter() - started)


@contextmanager
def single_thread() -> Iterator[None]:
    """Torch on one intra-op thread inside the block: per-clip STFTs are tiny, and on a busy machine
    several threads wait on each other (measured 30x slower on 2 loaded cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _read_by_another(spec: InputSpec, specs: list[InputSpec]) -> bool:
    """Whether an earlier input reads the same table column (its classical features would be a copy)."""
    earlier = specs[: specs.index(spec)]
    return spec.modality != "tabular" and any(
        s.modality == spec.modality and cell_column(s) == cell_column(spec) for s in earlier
    )


def build_blocks(cfg: Config, preprocessors: dict[str, Preprocessor], rows: dict[str, SplitRows],
                 encoders: Callable[[], dict[str, Encoder]], device: torch.device,
                 notes: list[str]) -> list[Block]:
    """The blocks of every input: classical features, plus frozen embeddings where the encoder is pretrained.

    Args:
        encoders: builds the config's encoders (called once, only when an input has a pretrained one).
        notes: receives one line per input or feature kind that gives no usable feature.
    """
    blocks: list[Block] = []
    built: dict[str, Encoder] | None = None
    specs = input_specs(cfg)
    for spec in specs:
        try:
            if not _read_by_another(spec, specs):
                blocks.append(classical_block(cfg, spec, preprocessors[spec.name], rows))
        except ValueError as exc:  # BadValueError is one too
            notes.append(f"{spec.name}: classical features skipped ({exc})")
        component = cfg.encoder_of(spec.name)
        if spec.modality == "tabular" or not is_pretrained(component):
            continue
        built = encoders() if built is None else built
        try:
            blocks.append(embedding_block(spec, built[spec.name], rows, device, component.name))
        except ValueError as exc:
            notes.append(f"{spec.name}: {component.name} embeddings skipped ({exc})")
    return blocks

"""Predictor: a loaded model that predicts from DataFrames, lists of dicts or one dict."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from omnifuse.artifacts import LoadedModel, load_model
from omnifuse.config import Config
from omnifuse.data.collate import Example, collate
from omnifuse.data.dataset import examples_from_records, input_specs
from omnifuse.data.io import read_table
from omnifuse.data.preprocess.base import Preprocessor
from omnifuse.data.quality import apply_bad_row_policy, check_columns
from omnifuse.errors import DataError
from omnifuse.model import MultimodalModel
from omnifuse.tasks.base import Task
from omnifuse.training.inference import run_model

Rows = pd.DataFrame | list[dict[str, Any]] | dict[str, Any]


class Predictor:
    """Predicts with a trained model; built by ``omnifuse.load(dir)`` or returned by ``omnifuse.train``.

    Args:
        model: the trained model (put in eval mode).
        config: its configuration.
        preprocessors: fitted preprocessors, one per model input.
        task: the task (classes, decoding).
        folder: the model folder it was loaded from, if any.
        batch_size: rows per forward pass.
    """

    def __init__(
        self,
        model: MultimodalModel,
        config: Config,
        preprocessors: dict[str, Preprocessor],
        task: Task,
        folder: Path | None = None,
        batch_size: int = 64,
    ) -> None:
        self.model = model.eval()
        self.config, self.preprocessors, self.task, self.folder = config, preprocessors, task, folder
        self.batch_size = batch_size
        self.device = next(model.parameters()).device
        self._specs = input_specs(config)

    @classmethod
    def from_loaded(cls, loaded: LoadedModel) -> Predictor:
        """Wraps a LoadedModel."""
        return cls(loaded.model, loaded.config, loaded.preprocessors, loaded.task, loaded.folder)

    @property
    def classes(self) -> list[Any]:
        """Class labels in the order of ``predict_proba`` columns ([] for regression)."""
        return self.task.classes

    def logits(self, rows: Rows | str | Path, base_dir: Path | None = None) -> Tensor:
        """Raw model outputs (N, C), in input order."""
        return self._run(rows, base_dir, embed=False)

    def predict(self, rows: Rows | str | Path, base_dir: Path | None = None) -> Any:
        """Predictions in the label's own values: a list, or one value when ``rows`` is one dict."""
        predictions = self.task.decode(self.logits(rows, base_dir))
        return predictions[0] if isinstance(rows, dict) else predictions

    def predict_proba(self, rows: Rows | str | Path, base_dir: Path | None = None) -> Any:
        """Class probabilities: a DataFrame with one column per class (a dict for one dict row)."""
        if not self.task.classes:
            raise ValueError(
                "predict_proba is for classification models; this one does regression: use predict"
            )
        probs = self.task.probabilities(self.logits(rows, base_dir)).numpy()
        frame = pd.DataFrame(probs, columns=[str(c) for c in self.task.classes])
        return frame.iloc[0].to_dict() if isinstance(rows, dict) else frame

    def embed(self, rows: Rows | str | Path, base_dir: Path | None = None) -> np.ndarray:
        """Fused representations (N, F) (or (F,) for one dict row)."""
        out = self._run(rows, base_dir, embed=True).numpy()
        return out[0] if isinstance(rows, dict) else out

    def explain(self, rows: Rows | str | Path, base_dir: Path | None = None) -> pd.DataFrame:
        """Per row: prediction, its probability, and per input the fusion weight and removal delta."""
        from omnifuse.explain import explain

        return explain(self, rows, base_dir)

    def prepare(
        self, rows: Rows | str | Path, base_dir: Path | None = None, allow_outside: bool | None = None
    ) -> list[Example]:
        """Checks and preprocesses rows into model-ready examples (no forward pass).

        Args:
            rows: a DataFrame, a list of row dicts, one dict, or the path of a table.
            base_dir: folder relative file paths are resolved against.
            allow_outside: whether file paths may resolve outside ``base_dir``; None: rows built in Python
                with no ``base_dir`` may, tables follow the model's ``data.allow_outside_paths``.

        Raises:
            DataError: a column is missing. BadRowError: a row cannot be preprocessed (names row, column,
                value and fix).
        """
        records, folder = to_records(rows, base_dir)
        check_records(records, self.config)
        outside = outside_paths_allowed(rows, base_dir) if allow_outside is None else allow_outside
        examples, bad = examples_from_records(
            enumerate(records), self._specs, self.preprocessors, self.config, folder, allow_outside=outside
        )
        apply_bad_row_policy(bad, "error", None, "the rows to predict")
        return examples

    def run_examples(self, examples: list[Example], embed: bool = False) -> Tensor:
        """Logits (N, C), or fused embeddings (N, F) with ``embed``, for prepared examples, in order."""
        size = self.batch_size
        batches = (collate(examples[i : i + size]) for i in range(0, len(examples), size))
        outputs, _, _ = run_model(self.model, batches, self.device, embed=embed)
        return outputs

    def _run(self, rows: Rows | str | Path, base_dir: Path | None, embed: bool) -> Tensor:
        return self.run_examples(self.prepare(rows, base_dir), embed=embed)


def to_records(rows: Rows | str | Path, base_dir: Path | None) -> tuple[list[dict[str, Any]], Path]:
    """Row dicts and the folder relative file paths are resolved against (no DataFrame for dict input)."""
    if isinstance(rows, (str, Path)):
        table = read_table(rows)
        return _records(table.frame), base_dir or table.base_dir
    folder = (base_dir or Path.cwd()).resolve()
    if isinstance(rows, dict):
        return [rows], folder
    if isinstance(rows, list):
        return rows, folder
    return _records(rows), folder


def outside_paths_allowed(rows: Rows | str | Path, base_dir: Path | None) -> bool | None:
    """True for rows built in Python with no ``base_dir`` (no table folder: their paths are the
    caller's choice); None otherwise, i.e. the model's ``data.allow_outside_paths`` decides."""
    return True if base_dir is None and not isinstance(rows, (str, Path)) else None


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): v for k, v in row.items()} for row in frame.to_dict(orient="records")]


def check_records(records: list[dict[str, Any]], config: Config) -> None:
    """Raises DataError naming an input column the rows lack (with a did-you-mean)."""
    if not records:
        raise DataError("no rows to predict; pass at least one row")
    wanted = [n for n, c in config.columns.items() if c.type != "ignore"]
    for position, record in enumerate(records):
        if any(name not in record for name in wanted):
            where = "" if len(records) == 1 else f" (row {position})"
            check_columns(pd.DataFrame(columns=list(record)), config, f"of rows to predict{where}", False)


def load(folder: str | Path, device: str | None = None) -> Predictor:
    """Loads a model folder written by ``omnifuse train`` (no network needed).

    Args:
        folder: the model folder.
        device: e.g. "cpu" or "cuda"; default: CUDA when available, else CPU.
    """
    loaded = load_model(folder)
    target = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    loaded.model.to(target)
    return Predictor.from_loaded(loaded)

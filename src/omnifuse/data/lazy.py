"""Batch prediction with DataLoader workers: rows are decoded and preprocessed lazily, in worker
processes, while the main process runs the model on the batches before them.

Rows come back in input order (the DataLoader keeps it); a row that cannot be preprocessed is reported
with its row number and column exactly as ``Predictor.prepare`` does, after every row was looked at.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from omnifuse.config.sections import Config
from omnifuse.data.collate import Batch, Example, collate
from omnifuse.data.dataset import BadRow, input_specs, make_example
from omnifuse.data.preprocess.base import Preprocessor
from omnifuse.data.quality import apply_bad_row_policy
from omnifuse.encoders.base import InputSpec
from omnifuse.inference.rows import check_records, outside_paths_allowed, to_records
from omnifuse.training.batched_forward import run_model

if TYPE_CHECKING:
    from omnifuse.inference.predictor import Predictor

Item = tuple[Example | None, BadRow | None]


class RowDataset(Dataset[Item]):
    """Row dicts, preprocessed when an item is asked for: (example, None) or (None, the problem).

    Args:
        records: the rows; item ``i`` is row ``i``.
        specs / preprocessors / config / base_dir / allow_outside: as for ``make_example``.
    """

    def __init__(self, records: list[dict[str, Any]], specs: Sequence[InputSpec],
                 preprocessors: dict[str, Preprocessor], config: Config, base_dir: Path,
                 allow_outside: bool | None) -> None:
        self.records, self.specs, self.preprocessors = records, specs, preprocessors
        self.config, self.base_dir, self.allow_outside = config, base_dir, allow_outside

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> Item:
        return make_example(i, self.records[i], self.specs, self.preprocessors, self.config, self.base_dir,
                            self.allow_outside)


def collate_items(items: list[Item]) -> tuple[Batch | None, list[BadRow]]:
    """The batch of the good rows (None when there is none) and the problems of the bad ones."""
    examples = [example for example, _ in items if example is not None]
    bad = [problem for _, problem in items if problem is not None]
    return (collate(examples) if examples else None), bad


def predict_lazily(predictor: Predictor, rows: Any, base_dir: Path | None, num_workers: int) -> Tensor:
    """Logits (N, C) of ``rows`` in input order, preprocessed by ``num_workers`` worker processes.

    Raises:
        DataError: a column is missing.
        BadRowError: a row cannot be preprocessed (the first one, with the count of the others).
    """
    records, folder = to_records(rows, base_dir)
    check_records(records, predictor.config)
    dataset = RowDataset(records, input_specs(predictor.config), predictor.preprocessors, predictor.config,
                         folder, outside_paths_allowed(rows, base_dir))
    loader = DataLoader(dataset, batch_size=predictor.batch_size, num_workers=num_workers,
                        collate_fn=collate_items)
    outputs: list[Tensor] = []
    bad: list[BadRow] = []
    for batch, problems in loader:
        bad += problems
        if batch is not None and not bad:  # once a row is bad the call fails: no more forward passes
            outputs.append(run_model(predictor.model, [batch], predictor.device)[0])
    apply_bad_row_policy(bad, "error", None, "the rows to predict")
    return outputs[0] if len(outputs) == 1 else torch.cat(outputs)

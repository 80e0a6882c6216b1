"""Per-column embeddings of a loaded model: the projected tower (contrastive) or the encoder output."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from omnifuse.contrastive.model import ContrastiveModel
from omnifuse.data.collate import batches
from omnifuse.data.dataset import examples_from_records
from omnifuse.data.quality import apply_bad_row_policy
from omnifuse.errors import DataError
from omnifuse.inference.rows import Rows, outside_paths_allowed, to_records

if TYPE_CHECKING:
    from omnifuse.inference.predictor import Predictor


def embedding_columns(predictor: Predictor) -> dict[str, str]:
    """{column: modality} of the columns ``embed(rows, column=...)`` accepts (contrastive: the towers)."""
    names = predictor.task.state_dict().get("columns") or predictor.config.input_names()
    modality = {spec.name: spec.modality for spec in predictor._specs}
    return {name: modality[name] for name in names}


def check_column(predictor: Predictor, column: str | None) -> str:
    """The column to embed.

    Raises:
        DataError: no column given for a contrastive model, or not one of its embedding columns.
    """
    columns = embedding_columns(predictor)
    listed = ", ".join(f"{n} ({m})" for n, m in columns.items())
    if column is None:
        raise DataError(
            f"this contrastive model embeds each column on its own; pass column= one of {listed}"
        )
    if column not in columns:
        raise DataError(f"column {column!r} is not an embedding column of this model; use one of {listed}")
    return column


@torch.inference_mode()
def embed_column(
    predictor: Predictor, rows: Rows | str | Path, column: str | None, base_dir: Path | None
) -> np.ndarray:
    """(N, D) embeddings of one column of ``rows`` (only that column is read), in order.

    Contrastive models give the L2-normalised projected embedding; other models the column encoder's
    pooled output. One dict row gives (D,).

    Raises:
        DataError: see ``check_column``; a row lacks the column. BadRowError: a cell cannot be used.
    """
    name = check_column(predictor, column)
    records, folder = to_records(rows, base_dir)
    _check_records(records, name, predictor)
    spec = next(s for s in predictor._specs if s.name == name)
    examples, bad = examples_from_records(
        enumerate(records), [spec], predictor.preprocessors, predictor.config, folder,
        allow_outside=outside_paths_allowed(rows, base_dir),
    )
    apply_bad_row_policy(bad, "error", None, "the rows to embed")
    model = predictor.model.eval()
    outputs = []
    for batch in batches(examples, predictor.batch_size):
        batch = batch.to(predictor.device)
        if isinstance(model, ContrastiveModel):
            outputs.append(model.embed_column(name, batch.inputs[name]).float().cpu())
        else:
            outputs.append(model.encoders[name](batch.inputs[name]).pooled.float().cpu())
    out = torch.cat(outputs).numpy()  # (N, D)
    return out[0] if isinstance(rows, dict) else out


def _check_records(records: list[dict[str, Any]], column: str, predictor: Predictor) -> None:
    if not records:
        raise DataError("no rows to embed; pass at least one row")
    needed = list(next(s for s in predictor._specs if s.name == column).columns)
    for position, record in enumerate(records):
        missing = [c for c in needed if c not in record]
        if missing:
            where = "" if len(records) == 1 else f" (row {position})"
            raise DataError(f"the rows to embed{where} have no column {missing[0]!r} (columns: "
                            f"{', '.join(map(str, record))}); add it, or embed another column")

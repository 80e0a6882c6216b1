"""Index folders: ``index.faiss`` (FAISS's own format, no pickle), ``index.json`` (what was built, from
what, how) and ``rows.parquet`` (row ids and metadata); this module writes them, ``read`` reads them."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omnifuse.errors import OmnifuseError
from omnifuse.retrieval import faiss_index as fx
from omnifuse.retrieval.source import now
from omnifuse.version import __version__

if TYPE_CHECKING:
    from omnifuse.retrieval.index import VectorIndex

FAISS_FILE, INFO_FILE, ROWS_FILE = "index.faiss", "index.json", "rows.parquet"
FORMAT = 1
REBUILD = "rebuild it with `omnifuse index --model MODEL --data TABLE --column C --out {folder}`"


def index_info(index: VectorIndex) -> dict[str, Any]:
    """The contents of ``index.json``."""
    return {
        "format": FORMAT,
        "kind": index.kind,
        "params": index.params,
        "options": index.options.to_dict(),
        "metric": "inner_product",
        "normalized": True,
        "dim": index.dim,
        "count": index.count,
        "model": index.source.model,
        "column": index.source.column,
        "modality": index.source.modality,
        "created": index.created,
        "updated": now(),
        "omnifuse_version": __version__,
    }


def save_index(index: VectorIndex, folder: Path) -> Path:
    """Writes the three files into ``folder``, each to a temporary name first, ``index.json`` last.

    Returns:
        The folder.
    """
    faiss = fx.import_faiss()
    folder.mkdir(parents=True, exist_ok=True)
    temp = {name: folder / f".{name}.tmp" for name in (FAISS_FILE, ROWS_FILE, INFO_FILE)}
    faiss.write_index(index.index, str(temp[FAISS_FILE]))
    try:
        index.rows.to_parquet(temp[ROWS_FILE], index=False)
    except Exception as exc:  # pyarrow raises several types for values it cannot store
        temp[FAISS_FILE].unlink(missing_ok=True)
        raise OmnifuseError(
            f"cannot write the index's row metadata ({type(exc).__name__}: {exc}); make every metadata "
            "column hold values of one type (numbers or text)"
        ) from None
    temp[INFO_FILE].write_text(json.dumps(index_info(index), indent=2), encoding="utf-8")
    for name in (FAISS_FILE, ROWS_FILE, INFO_FILE):
        os.replace(temp[name], folder / name)
    return folder

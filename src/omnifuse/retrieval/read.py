"""Reading an index folder written by ``save_index``: the three files, checked to agree."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from omnifuse.errors import ModelDirError
from omnifuse.retrieval import faiss_index as fx
from omnifuse.retrieval.index import VectorIndex
from omnifuse.retrieval.query import Embedder
from omnifuse.retrieval.source import IndexSource
from omnifuse.retrieval.store import FAISS_FILE, FORMAT, INFO_FILE, REBUILD, ROWS_FILE


def load_index(folder: str | Path, model: Embedder | None = None) -> VectorIndex:
    """Reads an index folder written by ``omnifuse index`` or ``VectorIndex.save``.

    Args:
        folder: the index folder.
        model: the model that embeds text/image/audio queries; default: loaded from the folder recorded
            in ``index.json`` on the first such query.

    Raises:
        ModelDirError: the folder or one of its files is missing, unreadable, or the files disagree.
    """
    path = Path(folder).expanduser()
    _check_folder(path)
    info = _read_info(path)
    rows = _read_rows(path)
    index = _read_faiss(path)
    _check_agree(path, info, index, rows)
    options = _options(path, info)
    fx.set_search_params(index, info["kind"], info["params"])
    source = IndexSource(info.get("model"), info.get("column"), info.get("modality"))
    loaded = VectorIndex(index, info["kind"], info["params"], rows, options, source, info.get("created"))
    loaded.model = model
    return loaded


def _check_folder(path: Path) -> None:
    if not path.is_dir():
        what = "is a file, not a folder" if path.exists() else "does not exist"
        raise ModelDirError(
            f"index folder {str(path)!r} {what}; give the folder written by `omnifuse index --out DIR`"
        )
    missing = [name for name in (FAISS_FILE, INFO_FILE, ROWS_FILE) if not (path / name).is_file()]
    if missing:
        raise ModelDirError(
            f"index folder {str(path)!r} lacks {', '.join(missing)}; it is not a complete index: "
            + REBUILD.format(folder=path)
        )


def _read_info(path: Path) -> dict[str, Any]:
    try:
        info = json.loads((path / INFO_FILE).read_text(encoding="utf-8"))
        if not isinstance(info, dict):
            raise ValueError("not a JSON object")
        for key in ("kind", "dim", "count", "params"):
            info[key]  # noqa: B018 - a KeyError names the missing field
    except (ValueError, KeyError, UnicodeDecodeError) as exc:
        raise ModelDirError(
            f"index folder {str(path)!r}: {INFO_FILE} is corrupt ({type(exc).__name__}: {exc}); "
            + REBUILD.format(folder=path)
        ) from None
    if info.get("format", FORMAT) > FORMAT or info["kind"] not in ("flat", "ivf", "hnsw"):
        raise ModelDirError(
            f"index folder {str(path)!r} was written by a newer omnifuse ({info.get('omnifuse_version')}) "
            f"or names an unknown kind {info['kind']!r}; upgrade omnifuse or " + REBUILD.format(folder=path)
        )
    return info


def _read_rows(path: Path) -> pd.DataFrame:
    try:
        rows = pd.read_parquet(path / ROWS_FILE)
    except Exception as exc:  # pyarrow raises several unrelated types for corrupt files
        raise ModelDirError(
            f"index folder {str(path)!r}: {ROWS_FILE} is not readable ({type(exc).__name__}); "
            + REBUILD.format(folder=path)
        ) from None
    if "id" not in rows.columns:
        raise ModelDirError(
            f"index folder {str(path)!r}: {ROWS_FILE} has no 'id' column; " + REBUILD.format(folder=path)
        )
    return rows


def _read_faiss(path: Path) -> Any:
    faiss = fx.import_faiss()
    try:
        return faiss.read_index(str(path / FAISS_FILE))
    except RuntimeError:
        raise ModelDirError(
            f"index folder {str(path)!r}: {FAISS_FILE} is not a readable FAISS index (corrupt or "
            "truncated); " + REBUILD.format(folder=path)
        ) from None


def _check_agree(path: Path, info: dict[str, Any], index: Any, rows: pd.DataFrame) -> None:
    counts = {"index.json count": info["count"], f"{FAISS_FILE} vectors": int(index.ntotal),
              f"{ROWS_FILE} rows": len(rows)}
    problems = []
    if len(set(counts.values())) != 1:
        problems.append(", ".join(f"{name} {n}" for name, n in counts.items()))
    if int(index.d) != info["dim"]:
        problems.append(f"index.json dim {info['dim']} but {FAISS_FILE} holds {index.d}-dimensional vectors")
    if problems:
        raise ModelDirError(
            f"index folder {str(path)!r}: its files disagree ({'; '.join(problems)}), e.g. after an "
            "interrupted write; " + REBUILD.format(folder=path)
        )


def _options(path: Path, info: dict[str, Any]) -> fx.IndexOptions:
    try:
        return fx.IndexOptions(**info.get("options", {}))
    except TypeError as exc:
        raise ModelDirError(
            f"index folder {str(path)!r}: {INFO_FILE} has unknown options ({exc}); "
            + REBUILD.format(folder=path)
        ) from None

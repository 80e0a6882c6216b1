"""Vector indexes for cross-modal search: build (``VectorIndex.build`` or ``omnifuse index``), save, load
(``load_index``), add rows, and search by text, image, audio or raw vector.

FAISS is imported only when an index is built, read or written (``pip install 'omnifuse[retrieval]'``).
"""

from __future__ import annotations

from omnifuse.retrieval.faiss_index import IndexOptions
from omnifuse.retrieval.index import IndexSource, VectorIndex
from omnifuse.retrieval.read import load_index
from omnifuse.retrieval.results import results_json

__all__ = ["IndexOptions", "IndexSource", "VectorIndex", "load_index", "results_json"]

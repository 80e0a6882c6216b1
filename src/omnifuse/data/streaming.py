"""Streaming a Parquet table in bounded batches (``data.streaming: true``): never read whole.

pyarrow's ``ParquetFile.iter_batches`` reads ``data.stream_batch_rows`` rows at a time; each batch is
preprocessed inside the IterableDataset, so memory holds one batch (per DataLoader worker), not the table.
Batches are dealt round-robin to the (DDP rank, DataLoader worker) pairs, and shuffled within themselves
each epoch. Parquet row groups are read whole, so write large tables with row groups of at most about
100,000 rows (``DataFrame.to_parquet(path, row_group_size=100_000)``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch.utils.data import IterableDataset, get_worker_info

from omnifuse.data.bucketing import grouped_batches, row_lengths
from omnifuse.data.collate import Example
from omnifuse.data.io import is_missing
from omnifuse.errors import DataError
from omnifuse.training import distributed

PARQUET_SUFFIXES = (".parquet", ".pq")


def parquet_file(source: Any) -> Any:
    """The opened ``pyarrow.parquet.ParquetFile`` of a streaming training table.

    Raises:
        DataError: ``source`` is not the path of a readable Parquet file.
    """
    import pyarrow.parquet as pq

    if isinstance(source, pd.DataFrame) or Path(str(source)).suffix.lower() not in PARQUET_SUFFIXES:
        shown = "a DataFrame" if isinstance(source, pd.DataFrame) else repr(str(source))
        raise DataError(f"data.streaming reads Parquet files, got {shown}; convert the table with "
                        "pandas DataFrame.to_parquet(path, row_group_size=100_000), "
                        "or set data.streaming: false")
    path = Path(str(source)).expanduser()
    if not path.is_file():
        raise DataError(f"table file {str(source)!r} does not exist (looked for {path.resolve()}); "
                        "check the path")
    try:
        return pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several unrelated types for corrupt files
        raise DataError(f"table {str(source)!r} is not a readable Parquet file "
                        f"({type(exc).__name__}: {exc}); re-export it, e.g. with pandas "
                        "DataFrame.to_parquet") from None


def read_rows(file: Any, columns: list[str], start: int, stop: int, batch_rows: int) -> pd.DataFrame:
    """Rows ``[start, stop)`` of the file (index = row number), reading at most one batch past ``stop``."""
    parts: list[pd.DataFrame] = []
    for first, frame in iter_frames(file, columns, batch_rows):
        if first >= stop:
            break
        if first + len(frame) > start:
            parts.append(frame.loc[max(start, first) : stop - 1])
    if not parts:
        return pd.DataFrame(columns=columns)
    return pd.concat(parts)


def iter_frames(file: Any, columns: list[str], batch_rows: int) -> Iterator[tuple[int, pd.DataFrame]]:
    """(first row number, DataFrame indexed by row number) per batch of ``batch_rows`` rows."""
    first = 0
    for batch in file.iter_batches(batch_size=batch_rows, columns=columns):
        frame = batch.to_pandas()
        frame.index = pd.RangeIndex(first, first + len(frame))
        yield first, frame
        first += len(frame)


def label_classes(file: Any, column: str, batch_rows: int) -> list[Any]:
    """The distinct non-missing values of one column over the whole file (one column read at a time)."""
    seen: dict[str, Any] = {}
    for batch in file.iter_batches(batch_size=batch_rows, columns=[column]):
        for value in batch.column(0).unique().to_pylist():
            if not is_missing(value):
                seen.setdefault(str(value), value)
    return list(seen.values())


class ParquetStream(IterableDataset[Example]):
    """Preprocessed Examples from rows ``start_row..`` of a Parquet file, batch by batch.

    Args:
        path: the Parquet file.
        columns: the columns to read.
        start_row: rows before it are skipped (held out for validation).
        batch_rows: rows read at a time (and the unit of sharding and shuffling).
        prepare: turns one DataFrame (indexed by row number) into Examples, handling its bad rows;
            ``report`` says whether to report them (only the first epoch, so they are listed once).
        shuffle / seed: shuffle the rows of each batch, seeded by ``seed + epoch + batch number``.
        group_size: > 0 (with shuffle): the training batch size; each read batch's rows are then ordered
            so that every run of ``group_size`` rows has similar lengths (``bucketing.grouped_batches``),
            the runs in random order.
    """

    def __init__(self, path: Path, columns: list[str], start_row: int, batch_rows: int,
                 prepare: Callable[[pd.DataFrame, bool], list[Example]], shuffle: bool = True,
                 seed: int = 0, group_size: int = 0) -> None:
        self.path, self.columns, self.start_row, self.batch_rows = path, columns, start_row, batch_rows
        self.prepare, self.shuffle, self.seed, self.epoch = prepare, shuffle, seed, 0
        self.group_size = group_size
        self.total_rows = int(parquet_file(path).metadata.num_rows)
        # read here, in the launched process: loader workers may be spawned without the process group
        self.rank, self.world = distributed.global_rank(), distributed.world_size()

    def set_epoch(self, epoch: int) -> None:
        """Selects the shuffling of ``epoch`` (0-based); bad rows are reported in epoch 0 only."""
        self.epoch = epoch

    def __len__(self) -> int:
        """Rows this rank reads (an upper bound: bad rows are skipped), for progress and the lr schedule."""
        return max(self.total_rows - self.start_row, 0) // self.world

    def _shard(self) -> tuple[int, int]:
        info = get_worker_info()
        workers, worker = (1, 0) if info is None else (info.num_workers, info.id)
        return self.rank * workers + worker, self.world * workers

    def __iter__(self) -> Iterator[Example]:
        shard, shards = self._shard()
        file = parquet_file(self.path)
        for number, (first, frame) in enumerate(iter_frames(file, self.columns, self.batch_rows)):
            if number % shards != shard or first + len(frame) <= self.start_row:
                continue
            examples = self.prepare(frame.loc[self.start_row :], self.epoch == 0)
            if self.shuffle:
                generator = torch.Generator().manual_seed(self.seed + self.epoch * 100_003 + number)
                examples = [examples[i] for i in self._order(examples, generator)]
            yield from examples

    def _order(self, examples: list[Example], generator: torch.Generator) -> list[int]:
        """A seeded shuffle of one read batch, grouped into runs of similar length with ``group_size``."""
        order = torch.randperm(len(examples), generator=generator)
        lengths = row_lengths(examples) if self.group_size > 0 else None
        if lengths is None:
            return order.tolist()
        full, rest = divmod(len(examples), self.group_size)
        sizes = [self.group_size] * full + ([rest] if rest else [])
        return torch.cat(grouped_batches(order, lengths, sizes, generator)).tolist()

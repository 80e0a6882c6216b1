"""The tabular preprocessor: standardised numeric columns and category ids, fitted on training rows."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from omnifuse.data.preprocess.base import Preprocessor
from omnifuse.errors import BadValueError, ModelDirError, OptionError

MISSING, UNK = "<missing>", "<unk>"
MISSING_ID, UNK_ID = 0, 1
_NA_TYPES = ("NAType", "NaTType")  # pandas.NA / pandas.NaT, recognised without importing pandas


def is_missing(value: Any) -> bool:
    """True for None, NaN, pandas NA and empty (or blank) strings."""
    if value is None or type(value).__name__ in _NA_TYPES:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, float):
        return math.isnan(value)
    try:  # numpy scalars that are not float subclasses (float32, float16)
        return bool(value != value)
    except (TypeError, ValueError):
        return False


MAX_ABS = 1e30  # larger numbers overflow float32 once standardised (and their squares overflow float64)


def parse_number(column: str, value: Any) -> float | None:
    """A finite float, or None when the cell is missing.

    Raises:
        BadValueError: the value is infinite or not a number.
    """
    if is_missing(value):
        return None
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except OverflowError:
        number = math.inf if not str(value).strip().startswith("-") else -math.inf
    except (TypeError, ValueError):
        raise BadValueError(
            f"numeric column {column!r}: {value!r} is not a number",
            "clean the column or declare it categorical",
            column=column,
            value=value,
        ) from None
    if math.isnan(number):  # the strings "nan" / "NaN"
        return None
    if math.isinf(number):
        raise BadValueError(
            f"numeric column {column!r}: {_short(value)} is infinite",
            "replace inf or leave the cell empty",
            column=column,
            value=value,
        )
    if abs(number) > MAX_ABS:
        raise BadValueError(
            f"numeric column {column!r}: {_short(value)} is too large for the model (|x| > {MAX_ABS:g})",
            "rescale the column (e.g. take its log) or leave the cell empty",
            column=column,
            value=value,
        )
    return number


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _number_or_none(column: str, value: Any) -> float | None:
    try:
        return parse_number(column, value)
    except BadValueError:
        return None


def category_key(value: Any) -> str | None:
    """The string a category is known by, or None when missing; 3.0 and 3 are the same category."""
    if is_missing(value):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip() if isinstance(value, str) else str(value)


class TabularPreprocessor(Preprocessor):
    """One row's numeric and categorical cells -> standardised numbers, missing flags and category ids.

    Numbers are standardised with the training mean and standard deviation; None, NaN and empty cells
    are missing. Each categorical column has its own vocabulary: id 0 is ``<missing>``, id 1 is
    ``<unk>`` (a category not seen in training), then the training categories, most frequent first.

    Args:
        columns: column -> "numeric" or "categorical" (``InputSpec.columns``); the order is kept.

    Raises:
        ValueError: no columns, or a column type other than "numeric" / "categorical".
    """

    def __init__(self, columns: dict[str, str]) -> None:
        bad = {name: kind for name, kind in columns.items() if kind not in ("numeric", "categorical")}
        if bad or not columns:
            raise OptionError(
                f"tabular columns must be 'numeric' or 'categorical', got {bad or columns!r}; "
                "route other column types to their own encoder"
            )
        self.numeric = [name for name, kind in columns.items() if kind == "numeric"]
        self.categorical = [name for name, kind in columns.items() if kind == "categorical"]
        self.mean = {name: 0.0 for name in self.numeric}
        self.std = {name: 1.0 for name in self.numeric}
        self.vocab: dict[str, list[str]] = {name: [MISSING, UNK] for name in self.categorical}
        self._index: dict[str, dict[str, int]] = {}
        self._reindex()

    def _reindex(self) -> None:
        self._index = {name: {v: i for i, v in enumerate(words)} for name, words in self.vocab.items()}

    def cardinalities(self) -> list[int]:
        """Vocabulary size of each categorical column, in column order (specials included)."""
        return [len(self.vocab[name]) for name in self.categorical]

    def fit(self, values: Sequence[Any]) -> None:
        """Learns mean / std of each numeric column and the categories of each categorical column.

        Args:
            values: the training rows, each a dict column -> raw value. Unusable numeric cells are left
                out of the statistics here; ``__call__`` reports them as bad rows with their row number.
        """
        for name in self.numeric:
            numbers = [n for row in values if (n := _number_or_none(name, row.get(name))) is not None]
            self.mean[name], self.std[name] = _mean_std(numbers)
        for name in self.categorical:
            counts = Counter(k for row in values if (k := category_key(row.get(name))) is not None)
            ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
            self.vocab[name] = [MISSING, UNK, *(key for key, _ in ranked)]
        self._reindex()

    def __call__(self, value: Any) -> dict[str, Tensor]:
        """Tensors for one row; a column absent from the dict counts as missing.

        Returns:
            ``numeric`` (N,) float (0 where missing), ``numeric_missing`` (N,) float 1/0 and
            ``categorical`` (K,) long.

        Raises:
            BadValueError: a numeric cell is infinite or not a number.
        """
        numbers = [parse_number(name, value.get(name)) for name in self.numeric]
        standardised = [
            0.0 if n is None else (n - self.mean[name]) / self.std[name]
            for name, n in zip(self.numeric, numbers, strict=True)
        ]
        ids = [self._category_id(name, value.get(name)) for name in self.categorical]
        return {
            "numeric": torch.tensor(standardised, dtype=torch.float32),  # (N,)
            "numeric_missing": torch.tensor([float(n is None) for n in numbers], dtype=torch.float32),  # (N,)
            "categorical": torch.tensor(ids, dtype=torch.long),  # (K,)
        }

    def _category_id(self, name: str, value: Any) -> int:
        key = category_key(value)
        return MISSING_ID if key is None else self._index[name].get(key, UNK_ID)

    def blank(self) -> dict[str, Tensor]:
        """Every cell missing."""
        return {
            "numeric": torch.zeros(len(self.numeric)),
            "numeric_missing": torch.ones(len(self.numeric)),
            "categorical": torch.full((len(self.categorical),), MISSING_ID, dtype=torch.long),
        }

    def state_dict(self) -> dict[str, Any]:
        """Columns, statistics and vocabularies (JSON-able)."""
        return {
            "numeric": list(self.numeric),
            "categorical": list(self.categorical),
            "mean": dict(self.mean),
            "std": dict(self.std),
            "vocab": {name: list(words) for name, words in self.vocab.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores the state written by ``state_dict``.

        Raises:
            ModelDirError: the saved columns differ from the ones this preprocessor was built for.
        """
        saved = (list(state["numeric"]), list(state["categorical"]))
        if saved != (self.numeric, self.categorical):
            raise ModelDirError(
                f"the saved tabular columns (numeric {saved[0]}, categorical {saved[1]}) differ from the "
                f"configured ones (numeric {self.numeric}, categorical {self.categorical}); "
                "use the config.yaml saved with the model"
            )
        self.mean = {name: float(state["mean"][name]) for name in self.numeric}
        self.std = {name: float(state["std"][name]) for name in self.numeric}
        self.vocab = {name: list(state["vocab"][name]) for name in self.categorical}
        self._reindex()


def _mean_std(numbers: list[float]) -> tuple[float, float]:
    """Mean and population std; std 1 when it would be 0 (constant or empty column)."""
    if not numbers:
        return 0.0, 1.0
    mean = math.fsum(numbers) / len(numbers)
    std = math.sqrt(math.fsum((n - mean) ** 2 for n in numbers) / len(numbers))
    return mean, std if std > 1e-12 else 1.0

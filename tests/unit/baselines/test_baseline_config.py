"""The `baseline` config section: defaults and the range check of max_rows."""

from __future__ import annotations

import pytest

from omnifuse.config.sections import Config
from omnifuse.errors import ConfigError

RAW = {"label": {"column": "y", "task": "multiclass"}, "columns": {"age": {"type": "numeric"}}}


def test_baselines_are_on_by_default_and_max_rows_must_be_positive() -> None:
    cfg = Config.from_dict(RAW)
    assert cfg.baseline.enabled is True and cfg.baseline.max_rows == 20000
    assert Config.from_dict({**RAW, "baseline": {"enabled": False}}).baseline.enabled is False
    with pytest.raises(ConfigError, match=r"baseline\.max_rows: must be >= 1, got 0") as info:
        Config.from_dict({**RAW, "baseline": {"max_rows": 0}})
    assert len(info.value.problems) == 1

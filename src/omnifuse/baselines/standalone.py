"""``omnifuse baseline``: the baselines of a config on its tables, without training a model.

The tables are read, split and preprocessed exactly as ``omnifuse train`` does (``api.prepare_data``: the same
validation split when no validation table is given, written to ``out/split.json``, the same bad-row policy,
``out/bad_rows.csv``), then every baseline is fitted and scored on the test table (the validation rows when
there is none). The command runs whatever ``baseline.enabled`` says; it reads the whole training table
(``data.streaming`` is ignored), and fits on at most ``baseline.max_rows`` of its rows.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from rich.console import Console

from omnifuse.api import prepare_data
from omnifuse.baselines.blocks import single_thread
from omnifuse.baselines.report import write_baseline_report
from omnifuse.baselines.run import run_baselines
from omnifuse.config.sections import Config
from omnifuse.workflows.prepare import RunContext, TableLike


def run_baseline(config: Config | str | Path, train: TableLike, valid: TableLike | None,
                 test: TableLike | None, out: str | Path, *, base_dir: str | Path | None = None,
                 progress: bool = True, console: Console | None = None) -> dict[str, Any]:
    """Fits and scores every baseline of ``config``; writes baselines.json, baselines.csv, report.md and
    plots/baselines.png to ``out``.

    Args:
        config: a Config or the path of a YAML config.
        train / valid / test: tables; without ``valid`` a split of ``train`` (``data.valid_fraction``);
            without ``test`` the baselines are scored on the validation rows.
        out: the folder to write into (created if needed).
        base_dir: the folder relative file paths in the tables are resolved against.
    Returns:
        The baselines (as in metrics.json: ``split``, ``metric``, ``results``, ``best``, ``notes``, ...).
    Raises:
        ConfigError, DataError, BadRowError: bad configuration or input.
    """
    cfg = config if isinstance(config, Config) else Config.from_yaml(config)
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, streaming=False))
    ctx = RunContext(Path(out), console or Console(), progress)
    ctx.out.mkdir(parents=True, exist_ok=True)
    with single_thread():  # per-row preprocessing is tiny work; see blocks.single_thread
        data = prepare_data(cfg, train, valid, test, ctx, base_dir=base_dir)
    split = "test" if test is not None else "valid"
    baselines = run_baselines(cfg, data.task, data.preprocessors, data.tables, data.examples, split)
    write_baseline_report(ctx.out, baselines, data.task.name)
    return baselines

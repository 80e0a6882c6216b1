"""``omnifuse.train``: resolves the preset, then trains one model (``api.train``) or, for ``best``, an
ensemble (``omnifuse.ensemble.best``)."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.markup import escape

from omnifuse import api
from omnifuse.config.sections import Config, override_training
from omnifuse.data.io import read_table
from omnifuse.ensemble.layout import ENSEMBLE, is_ensemble, remove_ensemble
from omnifuse.errors import DataError
from omnifuse.inference.predictor import Predictor
from omnifuse.training.distributed import is_rank_zero
from omnifuse.workflows import prepare
from omnifuse.workflows.presets import resolve_preset


def train(
    config: Config | str | Path,
    train: prepare.TableLike,
    valid: prepare.TableLike | None = None,
    test: prepare.TableLike | None = None,
    out: str | Path = "omnifuse_model",
    *,
    preset: str | None = None,
    time_limit: float | None = None,
    resume: bool = False,
    overwrite: bool = False,
    seed: int | None = None,
    base_dir: str | Path | None = None,
    progress: bool = True,
    console: Console | None = None,
) -> Predictor:
    """Trains a model on a table and saves a model folder to ``out``; returns its Predictor.

    Args:
        preset: fast, medium or best (see ``omnifuse.workflows.presets``); None: the config's ``preset``.
            ``best`` saves an ensemble folder (``out/ensemble.json``, ``out/members/<i>/``) that loads like
            a model.
        time_limit: seconds of training; overrides ``training.time_limit`` (``best``: for all members).
        config, train, valid, test, out, resume, overwrite, seed, base_dir, progress, console: as for
            ``omnifuse.api.train`` (``resume`` not with ``best``).
    Raises:
        ConfigError, DataError, BadRowError: bad configuration or input, before training starts.
    """
    cfg = config if isinstance(config, Config) else Config.from_yaml(config)
    cfg = override_training(cfg, time_limit=time_limit, seed=seed)
    name = cfg.preset if preset is None else preset
    ui = console or Console()
    _check_out(Path(out), name, resume, overwrite)
    root = None if base_dir is None else Path(base_dir).resolve()
    plan = resolve_preset(cfg, name, read_table(train, root) if name == "best" else None)
    if plan.members:
        from omnifuse.ensemble.best import train_best

        return train_best(plan, train, valid, test, out, overwrite=overwrite, base_dir=base_dir,
                          progress=progress, console=ui)
    for note in plan.notes if is_rank_zero() else []:  # DDP: rank 0 talks
        ui.print(f"[bold]preset {name}[/bold]: {escape(note)}")
    if overwrite and is_ensemble(out):
        remove_ensemble(Path(out))  # the folder becomes a single model's
    return api.train(plan.config, train, valid, test, out, resume=resume, overwrite=overwrite,
                     base_dir=base_dir, progress=progress, console=ui)


def _check_out(out: Path, preset: str, resume: bool, overwrite: bool) -> None:
    """Refuses ``--resume`` with ``best`` and an ensemble folder as ``out`` without ``--overwrite``.

    Raises:
        DataError: naming the fix.
    """
    if resume and preset == "best":
        raise DataError("--resume continues one model's run; preset best trains several: re-run it without "
                        "--resume (with --overwrite to replace the folder)")
    if is_ensemble(out) and not overwrite:
        raise DataError(f"output folder {str(out)!r} already holds a trained ensemble ({ENSEMBLE}); choose "
                        "another --out, or pass --overwrite to replace it")


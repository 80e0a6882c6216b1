"""Presets: what ``--preset fast|medium|best`` changes in a config before it runs.

A preset only changes what the user left at its default (a value equal to the dataclass default counts as
left alone, whether it was written out or not); whatever the user set is kept, and the notes say so.

- ``fast``: a quick look: at most ``FAST_EPOCHS`` epochs, patience ``FAST_PATIENCE``, one model; the
  baselines stay on.
- ``medium``: the config as written (the default).
- ``best``: pretrained encoders where they are installed and suit the column (text -> ``hf_text`` with the
  packaged MiniLM, plus a ``<column>_words`` ``tfidf`` entry reading the same column, as init-config writes;
  images larger than 64 px -> ``efficientnet_lite0``; tiny images and audio keep their from-scratch
  encoders), frozen as their registry entries recommend; ``BEST_EPOCHS`` epochs with patience
  ``BEST_PATIENCE``, and several members (fusions x seeds) that ``omnifuse.ensemble.best`` trains and
  ensembles greedily on the validation rows.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omnifuse.config.sections import (
    DEFAULT_ENCODERS,
    ColumnConfig,
    ComponentConfig,
    Config,
    LabelConfig,
    TrainingConfig,
)
from omnifuse.data.io import Table, is_missing
from omnifuse.errors import ConfigError

PRESETS = ("fast", "medium", "best")
FAST_EPOCHS = 10  # fast: at most this many epochs (when training.epochs is left at its default)
FAST_PATIENCE = 3
BEST_EPOCHS = 60
BEST_PATIENCE = 12
BEST_FUSIONS = ("late", "concat", "attention")  # best: the fusions of the members, when fusion is left alone
BEST_MEMBERS = 6  # best: members to train (fusions x seeds), fewer when the time limit runs out
PRETRAINED = ("hf_text", "efficientnet_lite0")  # the encoders best switches to, when installed


@dataclass
class Member:
    """One model of a ``best`` run."""

    name: str  # e.g. "attention-seed1"
    config: Config  # its whole config (preset: medium: it is one model)


@dataclass
class PresetPlan:
    """What a preset resolved to."""

    preset: str
    config: Config  # the config to run (best: what the members share: encoders, epochs, data)
    members: list[Member] = field(default_factory=list)  # best: the models to train; [] otherwise
    notes: list[str] = field(default_factory=list)  # what the preset changed or kept, one line each


def resolve_preset(config: Config, preset: str | None = None, table: Table | None = None) -> PresetPlan:
    """The config (and, for ``best``, the ensemble members) that ``preset`` makes of ``config``.

    Args:
        config: a validated Config; it is not changed.
        preset: fast, medium or best; None: ``config.preset``.
        table: the training table; ``best`` opens a few of its images to decide whether a pretrained image
            encoder suits them (without it, image columns keep their encoders).

    Returns:
        The plan: the config to run, the members (best) and one note per change.

    Raises:
        ConfigError: an unknown preset, or ``best`` with a config it cannot ensemble (contrastive
            pretraining, streaming, several devices).
    """
    name = config.preset if preset is None else preset
    if name not in PRESETS:
        raise ConfigError([f"preset: {name!r} is not one of {', '.join(PRESETS)}; pick one, e.g. "
                           "--preset fast for a quick look"])
    config = dataclasses.replace(config, preset=name)  # type: ignore[arg-type]  # checked just above
    if name == "medium":
        return PresetPlan(name, config)
    if name == "fast":
        wanted = {"epochs": FAST_EPOCHS, "patience": FAST_PATIENCE}
        training, notes = _training_changes(config.training, wanted, name)
        return PresetPlan(name, dataclasses.replace(config, training=training), notes=notes)
    return _resolve_best(config, table)


def _resolve_best(config: Config, table: Table | None) -> PresetPlan:
    _check_best(config)
    training, notes = _training_changes(config.training, {"epochs": BEST_EPOCHS, "patience": BEST_PATIENCE},
                                        "best")
    columns, encoder_notes = _pretrained_columns(config, table)
    base = dataclasses.replace(config, training=training, columns=columns)
    members = best_members(base)
    fusions = list(dict.fromkeys(m.config.fusion.name for m in members))
    seeds = sorted({m.config.training.seed for m in members})
    notes += encoder_notes + [
        f"members: {len(members)} ({', '.join(fusions)} x seeds {', '.join(map(str, seeds))}), then a greedy "
        "(Caruana) ensemble of the best of them chosen on the validation rows"
    ]
    if config.fusion != _default_fusion():
        notes.append(f"kept fusion: {config.fusion.name} (set in the config): members differ by seed only")
    return PresetPlan("best", base, members, notes)


def _check_best(config: Config) -> None:
    """Raises ConfigError for a config ``best`` cannot ensemble (all problems at once)."""
    problems = []
    if config.label.task == "contrastive":
        problems.append("preset best ensembles predictive models; contrastive pretraining embeds: use "
                        "--preset medium (or fast)")
    if config.data.streaming:
        problems.append("preset best trains several models on rows held in memory; set data.streaming: "
                        "false, or use --preset medium")
    t = config.training
    if t.devices not in (1, "1") or t.num_nodes != 1:
        problems.append(f"preset best trains its members one after another in one process; set "
                        f"training.devices: 1 and training.num_nodes: 1 (got {t.devices!r}, {t.num_nodes}), "
                        "or use --preset medium for distributed training")
    if problems:
        raise ConfigError(problems)


def best_members(config: Config) -> list[Member]:
    """The members of a ``best`` run: ``BEST_FUSIONS`` (or the config's own fusion, when it was set) times
    seeds ``training.seed + i``, ``BEST_MEMBERS`` in all, ordered so that a short time budget still gets
    every fusion once before any gets a second seed."""
    from omnifuse import catalog  # noqa: F401  (fills the registries)
    from omnifuse.fusion.base import FUSIONS

    if config.fusion != _default_fusion():
        fusions = [config.fusion]
    else:  # fusions of a fixed number of inputs (bilinear: two) only where the config has that many
        count = len(config.input_names())
        default = _default_fusion()  # late fusion by a mean: the default keeps its options
        fusions = [default if n == default.name else ComponentConfig(name=n) for n in BEST_FUSIONS
                   if FUSIONS.get(n).num_inputs in (None, count)]
    members = []
    for offset in range(math.ceil(BEST_MEMBERS / len(fusions))):
        for fusion in fusions:
            seed = config.training.seed + offset
            training = dataclasses.replace(config.training, seed=seed)
            member = dataclasses.replace(config, fusion=fusion, training=training, preset="medium")
            members.append(Member(f"{fusion.name}-seed{seed}", member))
    return members[:BEST_MEMBERS]


def _default_fusion() -> ComponentConfig:
    """``Config.fusion``'s default (a Config with no columns, never validated, holds it)."""
    return Config(label=LabelConfig(column="", task="multiclass"), columns={}).fusion


def _training_changes(training: TrainingConfig, wanted: dict[str, Any],
                      preset: str) -> tuple[TrainingConfig, list[str]]:
    """``training`` with each ``wanted`` value applied where the field is at its default; and the notes."""
    defaults = TrainingConfig()
    changes: dict[str, Any] = {}
    notes = []
    for key, value in wanted.items():
        current, default = getattr(training, key), getattr(defaults, key)
        if current == default:
            changes[key] = value
            notes.append(f"training.{key}: {default} -> {value}")
        elif current != value:
            notes.append(f"kept training.{key}: {current} (set in the config; preset {preset} uses {value})")
    return dataclasses.replace(training, **changes), notes


def _pretrained_columns(config: Config, table: Table | None) -> tuple[dict[str, ColumnConfig], list[str]]:
    """The columns with a pretrained encoder where the column's encoder was left at its default and one
    suits it (the choice ``omnifuse init-config`` makes), each ``hf_text`` one with its ``tfidf`` companion
    unless the config reads that column twice already; the notes say which."""
    from omnifuse.workflows.init_config import lexical_companion

    columns = dict(config.columns)
    notes = []
    read_twice = {c.source for c in config.columns.values() if c.source}  # the user paired these already
    for name, column in config.columns.items():
        encoder, note = _pretrained_choice(config, name, table)
        notes += [note] if note else []
        if encoder is None:
            continue
        columns[name] = dataclasses.replace(column, encoder=encoder)
        if encoder.name == "hf_text" and not column.source and name not in read_twice:
            taken = set(columns) | (set(map(str, table.frame.columns)) if table is not None else set())
            lexical, lexical_notes = lexical_companion(name, column, taken)
            columns[lexical_notes[0]], notes = lexical, notes + lexical_notes[1:]
    return columns, notes


def _pretrained_choice(config: Config, name: str, table: Table | None) -> tuple[ComponentConfig | None, str]:
    """The pretrained encoder (with its spec's schedule) for column entry ``name``, or None; and the note."""
    from omnifuse.workflows.init_config import _choose_encoder, with_spec_schedule

    column = config.columns[name]
    default = ComponentConfig(name=DEFAULT_ENCODERS.get(column.type, ""))
    if column.type not in ("text", "image"):
        return None, ""
    if column.encoder not in (None, default):
        if column.encoder is not None and column.encoder.name not in PRETRAINED:
            return None, f"kept columns.{name}.encoder: {column.encoder.name} (set in the config)"
        return None, ""
    if column.type == "image" and table is None:
        return None, ""  # the image sizes decide, and there is no table to open them from
    source = config.source_of(name)
    cells: Any = table.frame[source] if table is not None and source in table.frame.columns else []
    values = [str(v).strip() for v in cells if not is_missing(v)]
    choice, why = _choose_encoder(column.type, values, table.base_dir if table else Path.cwd())
    if choice is None or choice.name not in PRETRAINED:
        return None, ""
    encoder, why = with_spec_schedule(choice, why)  # frozen, cached features: as init-config writes it
    return encoder, f"columns.{name}.encoder: {default.name} -> {choice.name}: {why}"

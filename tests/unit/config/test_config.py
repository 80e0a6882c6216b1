"""Unit tests of Config: parsing, the flat component form, YAML round trip and derived views."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from omnifuse.build import make_task_for
from omnifuse.config.sections import ComponentConfig, Config, replace
from omnifuse.errors import ConfigError

BASE: dict[str, Any] = {
    "label": {"column": "y", "task": "multiclass"},
    "columns": {"review": {"type": "text"}, "age": {"type": "numeric"}, "city": {"type": "categorical"}},
}


def _raw(**sections: Any) -> dict[str, Any]:
    raw = copy.deepcopy(BASE)
    raw.update(sections)
    return raw


def _problems(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        Config.from_dict(raw)
    return info.value.problems


def test_minimal_config_gets_defaults() -> None:
    cfg = Config.from_dict(_raw())
    assert cfg.training.epochs == 40 and cfg.training.lr == 2e-3
    assert cfg.training.ema_decay == 0.99 and cfg.training.aux_loss == 1.0
    assert cfg.fusion == ComponentConfig(name="late", options={"combine": "mean"})
    assert cfg.tabular == ComponentConfig(name="tabular_mlp")
    assert cfg.columns["review"].encoder == ComponentConfig(name="textcnn")  # default filled in
    assert cfg.columns["age"].encoder is None
    assert cfg.data.on_bad_row == "error"


def test_encoder_short_form() -> None:
    cfg = Config.from_dict(_raw(columns={"review": {"type": "text", "encoder": "bow"}}))
    assert cfg.columns["review"].encoder == ComponentConfig(name="bow")


def test_encoder_flat_form_splits_options_from_component_keys() -> None:
    enc = {"name": "textcnn", "embed_dim": 32, "lr_mult": 0.1, "freeze_epochs": 2}
    cfg = Config.from_dict(_raw(columns={"review": {"type": "text", "encoder": enc}}))
    assert cfg.columns["review"].encoder == ComponentConfig(
        name="textcnn", options={"embed_dim": 32}, lr_mult=0.1, freeze_epochs=2
    )


@pytest.mark.parametrize(("encoder", "freeze_epochs", "lr_mult"), [
    ("hf_text", -1, 0.05),  # its EncoderSpec: a probe on frozen features, gentle if unfrozen
    ({"name": "efficientnet_lite0", "size": 64}, -1, 0.05),
    ({"name": "hf_text", "freeze_epochs": 0}, 0, 0.05),  # what is written is kept
    ({"name": "hf_text", "lr_mult": 1.0, "freeze_epochs": 0}, 0, 1.0),
    ({"name": "hf_text", "lora_r": 4}, 0, 0.05),  # the adapters must train
    ({"name": "efficientnet_lite0", "pretrained": False}, 0, 1.0),  # random weights train from scratch
    ({"name": "hf_text", "options": {"lora_r": 4}}, 0, 0.05),  # the explicit options form
    ("textcnn", 0, 1.0),
])
def test_left_out_schedule_comes_from_the_encoders_registry_entry(encoder: Any, freeze_epochs: int,
                                                                 lr_mult: float) -> None:
    column = {"type": "image" if "efficientnet" in str(encoder) else "text", "encoder": encoder}
    cfg = Config.from_dict(_raw(columns={"x": column}))
    built = cfg.columns["x"].encoder
    assert built is not None and (built.freeze_epochs, built.lr_mult) == (freeze_epochs, lr_mult)
    written = cfg.to_dict()
    assert Config.from_dict(written) == cfg  # what to_dict leaves out parses back to the same values
    if encoder == "hf_text":
        assert written["columns"]["x"]["encoder"] == {"name": "hf_text"}


def test_a_python_built_component_keeps_its_values_through_to_dict() -> None:
    cfg = Config.from_dict(_raw())
    cfg.columns["review"].encoder = ComponentConfig(name="hf_text")  # 0 and 1.0: a full fine-tune
    written = cfg.to_dict()["columns"]["review"]["encoder"]
    assert written == {"name": "hf_text", "lr_mult": 1.0, "freeze_epochs": 0}
    assert Config.from_dict(cfg.to_dict()) == cfg


def test_explicit_options_form_is_accepted() -> None:
    enc = {"name": "textcnn", "options": {"embed_dim": 16}}
    cfg = Config.from_dict(_raw(columns={"review": {"type": "text", "encoder": enc}}))
    assert cfg.columns["review"].encoder == ComponentConfig(name="textcnn", options={"embed_dim": 16})


def test_fusion_and_tabular_flat_forms() -> None:
    cfg = Config.from_dict(
        _raw(fusion={"name": "concat", "proj_dim": 8}, tabular={"name": "tabular_mlp", "hidden_dim": 12})
    )
    assert cfg.fusion == ComponentConfig(name="concat", options={"proj_dim": 8})
    assert cfg.tabular.options == {"hidden_dim": 12}
    assert Config.from_dict(_raw(fusion="concat")).fusion == ComponentConfig(name="concat")


def test_yaml_round_trip(tmp_path: Path) -> None:
    raw = _raw(
        columns={
            "review": {
                "type": "text",
                "encoder": {"name": "textcnn", "embed_dim": 32, "kernel_sizes": [2, 3], "lr_mult": 0.1},
            },
            "photo": {"type": "image", "allow_missing": True},
            "age": {"type": "numeric"},
            "note": {"type": "ignore"},
        },
        fusion={"name": "concat", "proj_dim": 8, "freeze_epochs": -1},
        training={"epochs": 3, "lr": 0.0005, "devices": "auto", "precision": "bf16-mixed"},
        data={"on_bad_row": "skip", "valid_fraction": 0.25},
        head={"hidden_dim": 0},
        label={"column": "y", "task": "multilabel", "delimiter": ";"},
    )
    original = Config.from_dict(raw)
    path = tmp_path / "c.yaml"
    original.to_yaml(path)
    again = Config.from_yaml(path)
    assert again == original
    assert again.columns["photo"].encoder == ComponentConfig(name="small_cnn")
    assert again.training.devices == "auto"
    # the file is in the flat form a user would write
    written = yaml.safe_load(path.read_text())
    assert written["columns"]["review"]["encoder"] == {
        "name": "textcnn",
        "embed_dim": 32,
        "kernel_sizes": [2, 3],
        "lr_mult": 0.1,
    }
    assert written["fusion"] == {"name": "concat", "proj_dim": 8, "freeze_epochs": -1}
    assert written["tabular"] == {"name": "tabular_mlp"}
    assert "encoder" not in written["columns"]["age"]


def test_to_dict_is_valid_input_again() -> None:
    cfg = Config.from_dict(_raw())
    assert Config.from_dict(cfg.to_dict()) == cfg


def test_unknown_top_level_and_nested_keys_did_you_mean() -> None:
    problems = _problems(_raw(training={"lrr": 0.1}, fusoin="concat"))
    assert any(p.startswith("training.lrr: unknown key. Did you mean 'lr'?") for p in problems)
    assert any(p.startswith("fusoin: unknown key. Did you mean 'fusion'?") for p in problems)
    assert len(problems) == 2


def test_unknown_key_in_column_did_you_mean() -> None:
    problems = _problems(_raw(columns={"review": {"type": "text", "alow_missing": True}}))
    assert problems == [
        "columns.review.alow_missing: unknown key. Did you mean 'allow_missing'? "
        "Known keys: type, encoder, allow_missing, augment, source"
    ]


def test_problem_inside_column_encoder_names_the_field() -> None:
    raw = _raw(
        columns={"review": {"type": "text", "encoder": {"name": "bow", "lr_mult": "x"}}},
        training={"epochs": 0},
    )
    assert _problems(raw) == [
        "columns.review.encoder.lr_mult: expected float, got str 'x'",
        "training.epochs: must be >= 1, got 0",
    ]


def test_encoder_without_name() -> None:
    raw = _raw(columns={"review": {"type": "text", "encoder": {"embed_dim": 32}}})
    assert _problems(raw) == ["columns.review.encoder.name: required key is missing"]


def test_wrong_type_message() -> None:
    with pytest.raises(ConfigError, match=r"training\.epochs: expected int, got str 'ten'"):
        Config.from_dict(_raw(training={"epochs": "ten"}))


def test_literal_choices() -> None:
    with pytest.raises(
        ConfigError,
        match=r"label\.task: 'multiclas' is not one of 'binary', 'multiclass', "
        r"'multilabel', 'regression'",
    ):
        Config.from_dict(_raw(label={"column": "y", "task": "multiclas"}))
    with pytest.raises(ConfigError, match=r"columns\.review\.type: 'txt' is not one of 'text'"):
        Config.from_dict(_raw(columns={"review": {"type": "txt"}}))
    with pytest.raises(ConfigError, match=r"data\.on_bad_row: 'drop' is not one of 'error', 'skip'"):
        Config.from_dict(_raw(data={"on_bad_row": "drop"}))


def test_missing_required_keys() -> None:
    problems = _problems({"label": {"task": "binary"}})
    assert problems == ["label.column: required key is missing", "columns: required key is missing"]
    assert _problems({"columns": {"a": {}}}) == [
        "label: required key is missing",
        "columns.a.type: required key is missing",
    ]


def test_four_problems_reported_in_one_error() -> None:
    raw = _raw(
        training={"lrr": 0.1, "epochs": "ten"},
        label={"column": "y", "task": "multiclas"},
        columns={"review": {"type": "text", "allow_missing": "yes"}},
    )
    with pytest.raises(ConfigError, match=r"invalid configuration \(4 problem\(s\)\):\n  - ") as info:
        Config.from_dict(raw)
    assert len(info.value.problems) == 4
    text = str(info.value)
    for needle in ("training.lrr", "training.epochs", "label.task", "columns.review.allow_missing"):
        assert needle in text


def test_non_mapping_section() -> None:
    with pytest.raises(ConfigError, match=r"training: expected a mapping, got int 5"):
        Config.from_dict(_raw(training=5))


def test_from_yaml_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match=r"config file '.*nope\.yaml' does not exist"):
        Config.from_yaml(path)


def test_from_yaml_invalid_yaml(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("label: {column: y\n  task: [\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: not valid YAML"):
        Config.from_yaml(path)


def test_from_yaml_empty_file_reports_required_keys(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("")
    with pytest.raises(ConfigError, match=r"label: required key is missing"):
        Config.from_yaml(path)


def test_from_yaml_top_level_not_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "table.csv"
    path.write_text("a,b,c\n1,2,3\n")  # e.g. `--config data.csv` by mistake: YAML reads one string
    with pytest.raises(
        ConfigError,
        match=r"the config must be a mapping of sections \(label, columns, \.\.\.\), "
        r"got str$",
    ):
        Config.from_yaml(path)
    with pytest.raises(ConfigError, match=r"got list$"):
        Config.from_dict(["label", "columns"])  # type: ignore[arg-type]


def test_from_yaml_accepts_exponent_floats(tmp_path: Path) -> None:
    # PyYAML (YAML 1.1) reads `1e-3` (no dot) as a string
    path = tmp_path / "c.yaml"
    path.write_text(
        "label: {column: y, task: binary}\ncolumns: {t: {type: text}}\n"
        "training: {lr: 1e-3, weight_decay: 1E-2, warmup_ratio: '.05'}\n"
    )
    cfg = Config.from_yaml(path)
    assert cfg.training.lr == pytest.approx(1e-3) and isinstance(cfg.training.lr, float)
    assert cfg.training.weight_decay == pytest.approx(1e-2)
    assert cfg.training.warmup_ratio == pytest.approx(0.05)


def test_number_like_strings_are_not_ints_or_free_text(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"training\.epochs: expected int, got str '1e3'"):
        Config.from_dict(_raw(training={"epochs": "1e3"}))
    with pytest.raises(ConfigError, match=r"training\.lr: expected float, got str '1e-3x'"):
        Config.from_dict(_raw(training={"lr": "1e-3x"}))


def test_derived_views() -> None:
    raw = _raw(
        columns={
            "zz_text": {"type": "text"},
            "photo": {"type": "image"},
            "age": {"type": "numeric"},
            "city": {"type": "categorical"},
            "junk": {"type": "ignore"},
        }
    )
    cfg = Config.from_dict(raw)
    assert list(cfg.media_columns()) == ["photo", "zz_text"]
    assert list(cfg.tabular_columns()) == ["age", "city"]
    assert cfg.input_names() == ["photo", "tabular", "zz_text"]
    assert cfg.encoder_of("tabular") is cfg.tabular
    assert cfg.encoder_of("photo").name == "small_cnn"


def test_input_names_without_tabular_columns() -> None:
    cfg = Config.from_dict(_raw(columns={"b": {"type": "text"}, "a": {"type": "text"}}))
    assert cfg.input_names() == ["a", "b"]


@pytest.mark.parametrize(
    ("task", "monitor", "expected"),
    [
        ("multiclass", "auto", "accuracy"),
        ("binary", "auto", "accuracy"),
        ("regression", "auto", "rmse"),
        ("multilabel", "auto", "macro_f1"),
        ("multiclass", "macro_f1", "macro_f1"),
    ],
)
def test_the_task_resolves_the_monitored_metric(task: str, monitor: str, expected: str) -> None:
    cfg = Config.from_dict(_raw(label={"column": "y", "task": task}, training={"monitor": monitor}))
    assert make_task_for(cfg).monitor(cfg.training.monitor)[0] == expected


def test_replace_copies_top_level_sections() -> None:
    cfg = Config.from_dict(_raw())
    other = replace(cfg, fusion=ComponentConfig(name="concat"))
    assert other.fusion.name == "concat" and cfg.fusion.name == "late"
    assert other.training is cfg.training

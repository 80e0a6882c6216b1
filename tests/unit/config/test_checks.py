"""Unit tests of config validation against the registries and value ranges."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from omnifuse.config.checks import config_problems
from omnifuse.config.sections import ComponentConfig, Config
from omnifuse.errors import ConfigError
from omnifuse.fusion.base import FUSIONS

BASE: dict[str, Any] = {
    "label": {"column": "y", "task": "multiclass"},
    "columns": {"review": {"type": "text"}, "age": {"type": "numeric"}},
}


def _raw(**sections: Any) -> dict[str, Any]:
    raw = copy.deepcopy(BASE)
    raw.update(sections)
    return raw


def _problems(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        Config.from_dict(raw)
    return info.value.problems


def test_valid_config_has_no_problems() -> None:
    cfg = Config.from_dict(_raw())
    assert config_problems(cfg) == []


@pytest.mark.parametrize(
    ("column_type", "default"), [("text", "textcnn"), ("image", "small_cnn"), ("audio", "mfcc_stats")]
)
def test_default_encoders_filled_in(column_type: str, default: str) -> None:
    cfg = Config.from_dict(_raw(columns={"c": {"type": column_type}}))
    assert cfg.columns["c"].encoder == ComponentConfig(name=default)


def test_unknown_encoder_lists_encoders_of_that_modality() -> None:
    raw = _raw(columns={"review": {"type": "text", "encoder": "textcn"}})
    with pytest.raises(
        ConfigError,
        match=r"columns\.review\.encoder: unknown encoder 'textcn'\. "
        r"Did you mean 'textcnn'\? Available: bilstm, bow, hf_text, lm_prompt, textcnn, tfidf$",
    ):
        Config.from_dict(raw)


def test_unknown_image_encoder_lists_only_image_encoders() -> None:
    problems = _problems(_raw(columns={"photo": {"type": "image", "encoder": "resnet"}}))
    assert len(problems) == 1
    assert problems[0].endswith("Available: efficientnet_lite0, hf_image, small_cnn")


def test_unknown_fusion_lists_all_fusions() -> None:
    with pytest.raises(
        ConfigError,
        match=r"fusion: unknown fusion 'concatt'\. Did you mean 'concat'\? "
        + re.escape(f"Available: {', '.join(FUSIONS.names())}"),
    ):
        Config.from_dict(_raw(fusion="concatt"))


def test_unknown_tabular_encoder() -> None:
    with pytest.raises(ConfigError, match=r"tabular: unknown encoder 'mlp'\. .*Available: tabular_mlp$"):
        Config.from_dict(_raw(tabular="mlp"))


def test_encoder_of_wrong_modality() -> None:
    raw = _raw(columns={"review": {"type": "text", "encoder": "small_cnn"}})
    with pytest.raises(
        ConfigError,
        match=r"columns\.review\.encoder: encoder 'small_cnn' reads image, not text; "
        r"use one of bilstm, bow, hf_text, lm_prompt, textcnn",
    ):
        Config.from_dict(raw)
    with pytest.raises(
        ConfigError, match=r"tabular: encoder 'bow' reads text, not tabular; use one of tabular_mlp"
    ):
        Config.from_dict(_raw(tabular="bow"))


def test_unknown_encoder_option_did_you_mean() -> None:
    raw = _raw(columns={"review": {"type": "text", "encoder": {"name": "textcnn", "embed_dimm": 32}}})
    with pytest.raises(
        ConfigError,
        match=r"columns\.review\.encoder\.embed_dimm: unknown key\. "
        r"Did you mean 'embed_dim'\? Known keys: embed_dim, num_filters",
    ):
        Config.from_dict(raw)


def test_wrong_type_of_encoder_and_fusion_option() -> None:
    raw = _raw(
        columns={"review": {"type": "text", "encoder": {"name": "bow", "embed_dim": "big"}}},
        fusion={"name": "concat", "proj_dim": 1.5},
    )
    problems = _problems(raw)
    assert problems == [
        "columns.review.encoder.embed_dim: expected int, got str 'big'",
        "fusion.proj_dim: expected int, got float 1.5",
    ]


def test_label_column_listed_as_input() -> None:
    raw = _raw(columns={"review": {"type": "text"}, "y": {"type": "categorical"}})
    with pytest.raises(
        ConfigError,
        match=r"columns\.y: is the label column; remove it from columns "
        r"\(or set type: ignore\)",
    ):
        Config.from_dict(raw)
    cfg = Config.from_dict(_raw(columns={"review": {"type": "text"}, "y": {"type": "ignore"}}))
    assert cfg.input_names() == ["review"]


def test_no_input_column() -> None:
    problems = _problems(_raw(columns={"y": {"type": "numeric"}}))
    assert "columns: no input column; list at least one column that is not the label" in problems
    assert len(problems) == 2
    with pytest.raises(ConfigError, match=r"columns: no input column"):
        Config.from_dict(_raw(columns={}))


def test_video_column_not_supported_yet() -> None:
    with pytest.raises(
        ConfigError,
        match=r"columns\.clip: video columns are not supported yet; "
        r"set type: ignore for now",
    ):
        Config.from_dict(_raw(columns={"review": {"type": "text"}, "clip": {"type": "video"}}))


def test_encoder_on_tabular_column_refused() -> None:
    raw = _raw(columns={"review": {"type": "text"}, "age": {"type": "numeric", "encoder": "tabular_mlp"}})
    with pytest.raises(
        ConfigError,
        match=r"columns\.age\.encoder: numeric columns share the 'tabular' encoder; "
        r"remove this key and configure the top-level 'tabular' section",
    ):
        Config.from_dict(raw)


@pytest.mark.parametrize(
    ("section", "values", "message"),
    [
        ("training", {"epochs": 0}, r"training\.epochs: must be >= 1, got 0"),
        ("training", {"batch_size": 0}, r"training\.batch_size: must be >= 1, got 0"),
        ("training", {"lr": 0.0}, r"training\.lr: must be > 0, got 0\.0"),
        ("training", {"weight_decay": -0.1}, r"training\.weight_decay: must be >= 0, got -0\.1"),
        ("training", {"warmup_ratio": 1.0}, r"training\.warmup_ratio: must be in \[0, 1\), got 1\.0"),
        ("training", {"grad_clip": -1.0}, r"training\.grad_clip: must be >= 0 \(0 disables\), got -1\.0"),
        ("training", {"accumulate": 0}, r"training\.accumulate: must be >= 1, got 0"),
        ("training", {"patience": 0}, r"training\.patience: must be >= 1, got 0"),
        ("training", {"modality_dropout": 1.0}, r"training\.modality_dropout: must be in \[0, 1\), got 1\.0"),
        ("training", {"num_workers": -1}, r"training\.num_workers: must be >= 0, got -1"),
        ("data", {"valid_fraction": 0.0}, r"data\.valid_fraction: must be in \(0, 1\), got 0\.0"),
        ("data", {"valid_fraction": 1.0}, r"data\.valid_fraction: must be in \(0, 1\), got 1\.0"),
        ("head", {"hidden_dim": -1}, r"head\.hidden_dim: must be >= 0 \(0: one linear layer\), got -1"),
        ("head", {"dropout": 1.0}, r"head\.dropout: must be in \[0, 1\), got 1\.0"),
    ],
)
def test_values_out_of_range(section: str, values: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        Config.from_dict(_raw(**{section: values}))
    assert len(info.value.problems) == 1


def test_boundary_values_are_accepted() -> None:
    cfg = Config.from_dict(
        _raw(
            training={
                "warmup_ratio": 0.0,
                "grad_clip": 0.0,
                "modality_dropout": 0.0,
                "weight_decay": 0.0,
                "num_workers": 0,
            },
            head={"hidden_dim": 0, "dropout": 0.0},
        )
    )
    assert cfg.head.hidden_dim == 0


def test_lr_mult_and_freeze_epochs_ranges() -> None:
    raw = _raw(
        columns={"review": {"type": "text", "encoder": {"name": "bow", "lr_mult": -0.5, "freeze_epochs": -2}}}
    )
    problems = _problems(raw)
    assert problems == [
        "columns.review.encoder.lr_mult: must be >= 0, got -0.5",
        "columns.review.encoder.freeze_epochs: must be -1 (always frozen) or >= 0, got -2",
    ]
    ok = _raw(
        columns={"review": {"type": "text", "encoder": {"name": "bow", "lr_mult": 0.0, "freeze_epochs": -1}}}
    )
    assert Config.from_dict(ok).columns["review"].encoder.freeze_epochs == -1  # type: ignore[union-attr]


def test_all_validation_problems_in_one_error() -> None:
    raw = _raw(
        columns={
            "review": {"type": "text", "encoder": "nope"},
            "clip": {"type": "video"},
            "y": {"type": "text"},
        },
        fusion="nope",
        training={"epochs": 0, "lr": -1.0},
    )
    problems = _problems(raw)
    assert len(problems) == 6
    with pytest.raises(ConfigError, match=r"invalid configuration \(6 problem\(s\)\)"):
        Config.from_dict(raw)


def test_parse_and_range_problems_reported_together() -> None:
    raw = _raw(training={"epochs": "ten", "batch_size": 0}, fusion="concatt")
    problems = _problems(raw)
    assert problems == [
        "training.epochs: expected int, got str 'ten'",
        f"fusion: unknown fusion 'concatt'. Did you mean 'concat'? Available: {', '.join(FUSIONS.names())}",
        "training.batch_size: must be >= 1, got 0",
    ]


def test_wrongly_typed_value_is_not_range_checked_twice() -> None:
    problems = _problems(_raw(training={"lr": "fast", "epochs": 0}, head={"dropout": "x"}))
    assert sorted(problems) == [
        "head.dropout: expected float, got str 'x'",
        "training.epochs: must be >= 1, got 0",
        "training.lr: expected float, got str 'fast'",
    ]


def test_media_column_named_tabular_is_refused() -> None:
    raw = _raw(columns={"tabular": {"type": "text"}, "age": {"type": "numeric"}})
    with pytest.raises(
        ConfigError,
        match=r"columns\.tabular: the name 'tabular' is reserved for the "
        r"numeric/categorical columns' shared input; rename this column",
    ):
        Config.from_dict(raw)
    alone = Config.from_dict(_raw(columns={"tabular": {"type": "text"}}))  # no clash without tabular columns
    assert alone.input_names() == ["tabular"]


def test_monitor_must_be_a_metric_of_the_task() -> None:
    from omnifuse.config.sections import Config
    from omnifuse.errors import ConfigError

    raw = {"label": {"column": "y", "task": "regression"}, "columns": {"x": {"type": "numeric"}},
           "training": {"monitor": "accuracy"}}
    with pytest.raises(ConfigError, match=r"training\.monitor: 'accuracy' is not a regression metric; "
                                          r"use auto or one of rmse, mae, r2, loss"):
        Config.from_dict(raw)
    raw["training"] = {"monitor": "r2"}
    assert Config.from_dict(raw).training.monitor == "r2"


def test_fusion_with_a_fixed_number_of_inputs() -> None:
    from omnifuse.config.sections import Config
    from omnifuse.errors import ConfigError

    raw = {"label": {"column": "y", "task": "binary"},
           "columns": {"a": {"type": "text"}, "b": {"type": "text"}, "c": {"type": "numeric"}},
           "fusion": "bilinear"}
    with pytest.raises(ConfigError, match=r"fusion: 'bilinear' fuses exactly 2 inputs, this config has 3 "
                                          r"\(a, b, tabular\); set the other columns to type: ignore"):
        Config.from_dict(raw)
    raw["columns"]["c"] = {"type": "ignore"}
    assert Config.from_dict(raw).fusion.name == "bilinear"


def test_problems_only_read_the_config_and_defaults_are_filled_at_load() -> None:
    from omnifuse.config.sections import ColumnConfig, Config, LabelConfig

    loaded = Config.from_dict({"label": {"task": "contrastive"},
                               "columns": {"a": {"type": "image"}, "b": {"type": "audio"}}})
    assert loaded.columns["a"].encoder is not None and loaded.columns["a"].encoder.name == "small_cnn"
    assert loaded.contrastive is not None and loaded.contrastive.columns == ["a", "b"]
    built = Config(label=LabelConfig(column="y", task="binary"), columns={"a": ColumnConfig(type="image")})
    before = built.to_dict()
    built.problems()
    assert built.to_dict() == before and built.columns["a"].encoder is None  # nothing filled in by a check


def test_a_column_can_read_another_column_as_source() -> None:
    columns = {"review": {"type": "text"}, "review_words": {"type": "text", "source": "review",
                                                            "encoder": {"name": "tfidf"}}}
    cfg = Config.from_dict(_raw(columns=columns))
    assert cfg.source_of("review_words") == "review"
    assert list(cfg.table_columns()) == ["review"] and cfg.table_types() == {"review": "text"}
    assert cfg.input_names() == ["review", "review_words"]


def test_source_of_an_ignored_column_is_read_from_the_table() -> None:
    columns = {"review": {"type": "ignore"}, "words": {"type": "text", "source": "review"}}
    cfg = Config.from_dict(_raw(columns=columns))
    assert list(cfg.table_columns()) == ["review"] and cfg.table_columns()["review"].type == "text"
    assert cfg.table_types() == {"review": "text"}


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ({"review": {"type": "text", "source": "review"}}, "names itself; remove source"),
        ({"review": {"type": "text"}, "a": {"type": "text", "source": "b"},
          "b": {"type": "text", "source": "review"}},
         "'b' itself reads column 'review'; set source: review"),
        ({"review": {"type": "text"}, "pic": {"type": "image", "source": "review"}},
         "'review' is a text column and 'pic' a image one"),
        ({"review": {"type": "text"}, "n": {"type": "numeric", "source": "review"}},
         "only text, image and audio columns can read another column"),
    ],
)
def test_bad_sources_are_reported_at_load(columns: dict[str, Any], message: str) -> None:
    problems = _problems(_raw(columns=columns))
    assert any(message in p for p in problems), problems

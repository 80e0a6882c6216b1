"""Error mapping, auth comparison, limit checks, generated schemas and answer shaping (no server)."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import pytest
import torch

from omnifuse.config.sections import Config
from omnifuse.errors import BadRowError, BadValueError, ConfigError, DataError, ModelDirError
from omnifuse.serving.app import check_limits
from omnifuse.serving.errors import api_fix, from_omnifuse
from omnifuse.serving.schema import build_models
from omnifuse.serving.security import key_matches
from omnifuse.serving.service import explanations_from_frame, finite, json_safe, plain, search_results

CONFIG = {
    "label": {"column": "animal", "task": "multiclass"},
    "columns": {"photo": {"type": "image", "allow_missing": True}, "note": {"type": "text"},
                "weight": {"type": "numeric"}, "colour": {"type": "categorical"}, "junk": {"type": "ignore"}},
}


def test_omnifuse_errors_map_to_statuses_with_row_and_column() -> None:
    fix = "fix the file, or set data.on_bad_row: skip"
    row = from_omnifuse(BadRowError(3, "photo", "cannot decode", fix))
    assert (row.status, row.row, row.column, row.fix) == (400, 3, "photo", "fix the file")
    assert row.message == "column 'photo' row 3: cannot decode"
    value = from_omnifuse(BadValueError("not a number", "clean it", column="weight", value="x"))
    assert (value.status, value.column) == (400, "weight")
    assert from_omnifuse(DataError("no column 'x'")).status == 422
    assert from_omnifuse(ModelDirError("bad")).status == 400
    assert api_fix("or set data.on_bad_row: skip") is None


def test_key_comparison() -> None:
    assert key_matches("s3cret", "s3cret") and not key_matches("s3cre", "s3cret")
    assert not key_matches("ünïcode", "s3cret")


def test_check_limits_lists_every_problem() -> None:
    check_limits(max_batch=1, max_wait_ms=0, max_pixels=None, timeout_s=0.1)
    with pytest.raises(ConfigError, match=r"max_batch must be > 0, got 0[\s\S]*max_wait_ms must be >= 0"):
        check_limits(max_batch=0, max_wait_ms=-1, max_pixels=5)


def test_generated_models_follow_the_columns() -> None:
    models = build_models(Config.from_dict(CONFIG), {"colour": ["red", "blue"]}, ["cat", "dog"])
    schema = models.predict_request.model_json_schema(by_alias=True)
    row = schema["$defs"]["Row"]
    assert set(row["properties"]) == {"photo", "note", "weight", "colour"}
    assert set(row["required"]) == {"photo", "note", "weight", "colour"}
    assert {"type": "null"} in row["properties"]["photo"]["anyOf"]  # allow_missing
    assert row["properties"]["note"]["type"] == "string"
    assert "red, blue" in row["properties"]["colour"]["description"]
    assert schema["properties"]["rows"]["minItems"] == 1
    response = models.predict_response.model_json_schema()
    assert "probabilities" in response["$defs"]["Prediction"]["properties"]
    assert models.form_schema["properties"]["photo"]["format"] == "binary"
    regression = build_models(Config.from_dict({**CONFIG, "label": {"column": "y", "task": "regression"}}),
                              {}, [])
    assert "probabilities" not in regression.predict_response.model_json_schema()["$defs"]["Prediction"][
        "properties"]


def test_answer_values_are_strict_json() -> None:
    assert plain(torch.tensor(2.5)) == 2.5 and plain(float("nan")) is None
    assert finite(float("inf")) is None and finite(None) is None and finite(torch.tensor(1.0)) == 1.0
    assert json_safe({"a": [1.0, math.nan], "b": {"c": math.inf}}) == {"a": [1.0, None], "b": {"c": None}}


def test_explanations_and_search_results_shapes() -> None:
    frame = pd.DataFrame({"prediction": ["cat"], "probability": [0.9], "delta_note": [0.1],
                          "delta_photo": [0.0]})
    assert explanations_from_frame(frame, ["note", "photo"]) == [{
        "prediction": "cat", "probability": 0.9,
        "inputs": {"note": {"weight": None, "delta": 0.1}, "photo": {"weight": None, "delta": 0.0}}}]
    hits = pd.DataFrame({"rank": [1], "score": [0.5], "id": ["a"], "caption": ["x"], "n": [float("nan")]})
    results: list[dict[str, Any]] = search_results(hits)
    assert results == [{"rank": 1, "score": 0.5, "id": "a", "metadata": {"caption": "x", "n": None}}]


def test_a_failing_warm_up_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    from types import SimpleNamespace

    from omnifuse.serving.service import warmup

    def run_examples(examples: list[Any]) -> Any:
        raise RuntimeError("Calculated padded input size per channel: (1). Kernel size: (10)")

    predictor = SimpleNamespace(preprocessors={}, run_examples=run_examples)
    with caplog.at_level("WARNING", logger="omnifuse.serving"):
        assert warmup(predictor) is False  # type: ignore[arg-type]
    assert "the warm-up forward failed (RuntimeError: Calculated padded input size" in caplog.text
    assert warmup(SimpleNamespace(preprocessors={}, run_examples=lambda examples: None)) is True  # type: ignore[arg-type]

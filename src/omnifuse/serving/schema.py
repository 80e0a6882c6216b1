"""Pydantic request/response models generated from a model's own input columns, for ``/openapi.json``.

The request row has one field per input column (its JSON name is the column name), typed by column
type: a string for text; a string (``data:`` URL, raw base64, or an allowed path) for image / audio /
video; a number for numeric; a string or number for categorical, with the fitted categories as examples.
Bodies are parsed by ``omnifuse.serving.decode`` (which gives errors naming row and column); these
models describe them for ``/docs`` and for clients.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from omnifuse.config.sections import Config
from omnifuse.serving.decode import MEDIA_TYPES

MEDIA_HELP = (
    "the {kind} file as a data: URL (data:<mime>;base64,...) or raw base64; a path inside the server's "
    "--allow-files folder when it runs with one"
)
MAX_CATEGORY_EXAMPLES = 20


class ErrorDetail(BaseModel):
    """What went wrong, where, and how to fix it."""

    message: str
    row: int | None = Field(None, description="row of the request (0-based), when known")
    column: str | None = Field(None, description="column, when known")
    fix: str | None = Field(None, description="what to do about it")


class ErrorResponse(BaseModel):
    """Every error answer."""

    error: ErrorDetail


class Status(BaseModel):
    """``/health`` and ``/ready``."""

    status: str


class ColumnInfo(BaseModel):
    """One input column of the model."""

    model_config = ConfigDict(extra="allow")  # "categories" only for categorical columns

    name: str
    type: Literal["text", "image", "audio", "video", "numeric", "categorical"]
    allow_missing: bool


class ModelInfo(BaseModel):
    """``/v1/model``: what the model predicts and what to send it."""

    name: str
    task: Literal["binary", "multiclass", "multilabel", "regression", "contrastive"]
    label: str
    classes: list[str]
    columns: list[ColumnInfo]
    metrics: dict[str, Any]
    version: str
    explain: bool
    search: bool


class OodFlag(BaseModel):
    """One input's out-of-distribution score in a prediction."""

    score: float = Field(description="distance to the training data over the threshold; above 1: flagged")
    flagged: bool = Field(description="whether the value looks unlike the training values")
    weight: float = Field(description="1: fused; 0: fused as if missing (`ood.action: drop`)")


class InputEffect(BaseModel):
    """One model input's part in a prediction."""

    weight: float | None = Field(description="fusion weight of the input; null when the fusion has none")
    delta: float | None = Field(
        description="change in the predicted answer's score when the input is removed (null: not finite)"
    )


class SearchRequest(BaseModel):
    """``/v1/search``: exactly one of text, image, audio."""

    text: str | None = None
    image: str | None = Field(None, description="image bytes: data: URL or raw base64")
    audio: str | None = Field(None, description="audio bytes: data: URL or raw base64")
    k: int = Field(10, ge=1, le=1000, description="number of results")


class SearchResult(BaseModel):
    """One hit."""

    rank: int
    score: float
    id: Any
    metadata: dict[str, Any]


class SearchResponse(BaseModel):
    """``/v1/search`` answer, best first."""

    results: list[SearchResult]


@dataclass
class ApiModels:
    """The generated models of one served model."""

    row: type[BaseModel]
    predict_request: type[BaseModel]
    predict_response: type[BaseModel]
    explain_response: type[BaseModel]
    form_schema: dict[str, Any]  # JSON schema of the multipart form (one row)


def build_models(config: Config, categories: dict[str, list[str]], classes: list[str]) -> ApiModels:
    """Generates the request and response models of a model.

    Args:
        config: the model's configuration (columns, task).
        categories: categorical column -> its fitted categories.
        classes: class names ([] for regression).
    """
    fields: dict[str, Any] = {}
    for i, (name, column) in enumerate(config.table_columns().items()):  # ignored columns are not in it
        annotation, extra = _cell(column.type, categories.get(name, []))
        if column.allow_missing or column.type not in MEDIA_TYPES + ("text",):
            annotation = annotation | None
        fields[f"column_{i}"] = (annotation, Field(alias=name, **extra))
    row = create_model("Row", __config__=ConfigDict(extra="allow", populate_by_name=True), **fields)
    request = create_model("PredictRequest", rows=(list[row], Field(min_length=1)))  # type: ignore[valid-type]
    return ApiModels(row, request, _predict_response(config, classes), _explain_response(classes),
                     _form_schema(config))


def _cell(kind: str, categories: list[str]) -> tuple[Any, dict[str, Any]]:
    if kind in MEDIA_TYPES:
        return str, {"description": MEDIA_HELP.format(kind=kind)}
    if kind == "numeric":
        return float, {"description": "a number (null: missing)"}
    if kind == "categorical":
        shown = categories[:MAX_CATEGORY_EXAMPLES]
        more = " ..." if len(categories) > len(shown) else ""
        help_text = f"one of the categories seen in training (others count as unknown): {', '.join(shown)}"
        return str | float, {"description": help_text + more, "examples": shown[:3] or None}
    return str, {"description": "text"}


def _predict_response(config: Config, classes: list[str]) -> type[BaseModel]:
    regression = config.label.task == "regression"
    value: Any = float if regression else str | float | bool
    fields: dict[str, Any] = {"prediction": (value, Field(description="the predicted label value"))}
    if not regression:
        fields["probabilities"] = (
            dict[str, float | None],
            Field(description=f"probability per class ({', '.join(classes[:20])})"),
        )
    fields["ood"] = (dict[str, OodFlag] | None, Field(
        None, description="per input with a fitted OOD score (model folders trained with `ood`): its "
        "score (above 1: unlike the training data) and the weight the fusion gave it (0: fused as missing)"))
    fields["ood_note"] = (str | None, Field(None, description="the flags in words; empty: none"))
    prediction = create_model("Prediction", **fields)
    return create_model("PredictResponse", predictions=(list[prediction], ...))  # type: ignore[valid-type]


def _explain_response(classes: list[str]) -> type[BaseModel]:
    explanation = create_model(
        "Explanation",
        prediction=(str | float | bool, ...),
        probability=(float | None, Field(description="score of the prediction; null for regression")),
        inputs=(dict[str, InputEffect], Field(description="per model input (media columns and 'tabular')")),
        ood=(dict[str, OodFlag] | None, Field(None, description="per input with a fitted OOD score (see "
                                              "the predict answer's `ood`)")),
        ood_note=(str | None, Field(None, description="the flags in words; empty: none")),
    )
    return create_model("ExplainResponse", explanations=(list[explanation], ...))  # type: ignore[valid-type]


def _form_schema(config: Config) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    for name, column in config.table_columns().items():
        if column.type in MEDIA_TYPES:
            properties[name] = {"type": "string", "format": "binary",
                                "description": f"the {column.type} file (upload)"}
        else:
            properties[name] = {"type": "string", "description": f"{column.type} value"}
    required = [n for n, c in config.table_columns().items() if not c.allow_missing]
    return {"type": "object", "properties": properties, "required": required}

"""The contrastive config section, init_from keys, and the contrastive task."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F

from omnifuse.build import make_task_for
from omnifuse.config.sections import Config
from omnifuse.contrastive.model import ContrastiveOutput
from omnifuse.errors import ConfigError, DataError
from omnifuse.tasks import task_from_state
from omnifuse.tasks.contrastive import ContrastiveTask, label_id


def _raw(**changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "label": {"task": "contrastive"},
        "columns": {"image": {"type": "image"}, "text": {"type": "text"}},
        "contrastive": {"columns": ["image", "text"], "embed_dim": 8},
    }
    raw.update(changes)
    return raw


def test_contrastive_config_round_trips_without_a_label() -> None:
    config = Config.from_dict(_raw())
    assert config.label.column == "" and config.contrastive is not None
    flat = config.to_dict()
    assert "column" not in flat["label"] and flat["contrastive"]["loss"] == "clip"
    assert Config.from_dict(flat) == config
    assert make_task_for(config).monitor(config.training.monitor) == ("recall@1", "max")


def test_other_configs_do_not_gain_a_contrastive_key() -> None:
    columns = {"t": {"type": "text"}}
    config = Config.from_dict({"label": {"column": "y", "task": "binary"}, "columns": columns})
    assert "contrastive" not in config.to_dict()
    with pytest.raises(ConfigError, match=r"label\.column: is empty; name the column to predict"):
        Config.from_dict({"label": {"column": "", "task": "binary"}, "columns": {"t": {"type": "text"}}})


def test_default_columns_are_every_input() -> None:
    config = Config.from_dict(_raw(contrastive=None))
    assert config.contrastive is not None and config.contrastive.columns == ["image", "text"]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"contrastive": {"columns": ["image"]}}, r"needs at least 2 different columns"),
        ({"contrastive": {"columns": ["image", "txt"]}}, r"'txt' is not a column of this config"),
        ({"contrastive": {"columns": ["image", "text", "text"]}}, r"names a column twice"),
        ({"contrastive": {"columns": ["image", "text"], "embed_dim": 0}}, r"embed_dim: must be >= 1"),
        ({"contrastive": {"columns": ["image", "text"], "temperature": 0}}, r"temperature: must be > 0"),
        ({"contrastive": {"columns": ["image", "text"], "queue_size": -1}}, r"queue_size: must be >= 0"),
        ({"contrastive": {"columns": ["image", "text"], "loss": "triplet"}}, r"'triplet' is not one of"),
        ({"columns": {"image": {"type": "image"}, "text": {"type": "text"}, "w": {"type": "numeric"}},
          "contrastive": {"columns": ["image", "w"]}}, r"list 'tabular' instead"),
        ({"columns": {"image": {"type": "image"}, "text": {"type": "text"}, "extra": {"type": "text"}}},
         r"columns\.extra: is an input but not one of contrastive\.columns"),
        ({"columns": {"image": {"type": "image", "allow_missing": True}, "text": {"type": "text"}}},
         r"columns\.image\.allow_missing: contrastive pairs need every tower's value"),
    ],
)
def test_contrastive_problems(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Config.from_dict(_raw(**changes))


def test_contrastive_section_only_with_the_contrastive_task() -> None:
    raw = _raw(label={"column": "y", "task": "multiclass"})
    with pytest.raises(ConfigError, match=r"contrastive: only used with label\.task: contrastive"):
        Config.from_dict(raw)


def test_init_from_keys_are_flat_and_round_trip() -> None:
    raw = {"label": {"column": "y", "task": "multiclass"},
           "columns": {"image": {"type": "image", "encoder": {"name": "small_cnn", "size": 16,
                                                             "init_from": "pre/", "init_column": "photo"}}}}
    config = Config.from_dict(raw)
    encoder = config.columns["image"].encoder
    assert encoder is not None and encoder.init_from == "pre/" and encoder.init_column == "photo"
    assert encoder.options == {"size": 16}
    assert config.to_dict()["columns"]["image"]["encoder"]["init_from"] == "pre/"
    assert Config.from_dict(config.to_dict()) == config
    raw["columns"]["image"]["encoder"] = {"name": "small_cnn", "init_column": "photo"}
    with pytest.raises(ConfigError, match=r"init_column: 'photo' is set but init_from is not"):
        Config.from_dict(raw)


def _packed(a: torch.Tensor, b: torch.Tensor, requires_grad: bool = False) -> torch.Tensor:
    rows = len(a)
    scalars = torch.tensor([0.0, 0.0]).expand(rows, 2)
    out = torch.cat([a, b, scalars], dim=1)  # (B, 2D + 2)
    return out.requires_grad_(requires_grad)


def test_unpack_splits_columns_and_scalars() -> None:
    a, b = torch.ones(3, 2), torch.zeros(3, 2)
    out = ContrastiveOutput.unpack(torch.cat([a, b, torch.tensor([[1.5, -2.0]] * 3)], 1), ["a", "b"], 2)
    assert torch.equal(out.embeddings["a"], a) and torch.equal(out.embeddings["b"], b)
    assert float(out.logit_scale) == 1.5 and float(out.bias) == -2.0 and out.content_ids is None


def test_task_uses_the_queue_only_for_training_outputs() -> None:
    task = ContrastiveTask(["b", "a"], embed_dim=2, queue_size=4)
    a = F.normalize(torch.randn(3, 2), dim=-1)
    b = F.normalize(torch.randn(3, 2), dim=-1)
    targets = torch.full((3,), -1)
    first = task.loss(_packed(a, b), targets)["loss"]
    assert len(task.queues["a"]) == 0  # evaluation outputs: no queue
    task.loss(_packed(a, b, requires_grad=True), targets)
    assert len(task.queues["a"]) == 3 and len(task.queues["b"]) == 3
    with_queue = task.loss(_packed(a, b, requires_grad=True), targets)["loss"]
    assert float(with_queue.detach()) > float(first)  # the queued copies are hard extra negatives
    assert len(task.queues["a"]) == 4


def test_task_metrics_state_and_errors() -> None:
    task = ContrastiveTask(["a", "b"], embed_dim=2)
    task.fit(["x", None, "y"])
    assert task.has_labels and task.check_labels([None]) == []
    same = F.normalize(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), dim=-1)
    targets = torch.stack([task.encode(v) for v in ["x", "y", None]])
    assert int(targets[2]) == -1 and label_id("x") == label_id(" x ") != label_id("y")
    metrics = task.metrics(_packed(same, same), targets)
    assert metrics["recall@1"] == 1.0 and metrics["a->b/recall@1"] == 1.0 and "map" in metrics
    assert task_from_state(task.state_dict()) == task
    with pytest.raises(DataError, match=r"contrastive \(embedding\) model: it has no classes"):
        task.decode(torch.zeros(1, 6))

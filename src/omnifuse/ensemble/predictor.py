"""Loading an ensemble folder into a Predictor whose forward pass averages its members."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from omnifuse.artifacts.folder import ASSETS, REQUIRED, LoadedModel, load_model
from omnifuse.artifacts.manifest import verify_manifest
from omnifuse.config.sections import Config
from omnifuse.data.preprocess.base import Preprocessor
from omnifuse.ensemble.combine import EnsembleModel, space_of
from omnifuse.ensemble.layout import read_ensemble, single_model_only
from omnifuse.errors import ModelDirError
from omnifuse.inference.predictor import Predictor
from omnifuse.inference.rows import Rows
from omnifuse.tasks import task_from_state
from omnifuse.tasks.base import Task


class EnsemblePredictor(Predictor):
    """A Predictor over an ensemble: ``predict``, ``predict_proba``, ``logits`` and ``omnifuse.evaluate`` work
    as for one model (on the weighted average of the members' probabilities, or predictions for regression);
    ``embed`` and ``explain`` refuse, naming a member to use instead.

    Args:
        model: the EnsembleModel of the members.
        config, preprocessors, task: the first member's (every member reads the same preprocessed inputs).
        folder: the ensemble folder.
        ensemble: the content of its ensemble.json.
    """

    def __init__(self, model: EnsembleModel, config: Config, preprocessors: dict[str, Preprocessor],
                 task: Task, folder: Path, ensemble: dict[str, Any]) -> None:
        super().__init__(model, config, preprocessors, task, folder)  # type: ignore[arg-type]
        self.ensemble, self.ensemble_folder = ensemble, folder

    def embed(self, rows: Rows | str | Path, base_dir: Path | None = None, *,
              column: str | None = None) -> np.ndarray:
        """Refused: an ensemble has no single fused representation.

        Raises:
            ModelDirError: always; the message names a member folder to embed with.
        """
        raise ModelDirError(single_model_only(self.ensemble_folder))

    def explain(self, rows: Rows | str | Path, base_dir: Path | None = None) -> pd.DataFrame:
        """Refused: fusion weights and removal deltas are per model.

        Raises:
            ModelDirError: always; the message names a member folder to explain.
        """
        raise ModelDirError(single_model_only(self.ensemble_folder))

    @property
    def embedding_columns(self) -> dict[str, str]:
        """None: an ensemble embeds nothing (see ``embed``)."""
        return {}


def load_ensemble(folder: str | Path, device: str | None = None) -> EnsemblePredictor:
    """Loads an ensemble folder (no network): verifies its manifest and every member's, loads the members
    with a weight above 0 and checks that they belong together.

    Raises:
        ModelDirError: a changed, added or removed file; a damaged ensemble.json; members that do not read
            the same inputs, preprocessed the same way, for the same task.
    """
    folder = Path(folder)
    data, members = read_ensemble(folder)
    for path, weight in members:
        if weight == 0:  # not loaded, but a changed file in it is still refused
            verify_manifest(path, REQUIRED, ASSETS)
    chosen = [(path, weight) for path, weight in members if weight > 0]
    loaded = [load_model(path) for path, _ in chosen]
    _check_members(folder, loaded)
    target = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    first = loaded[0]
    temperatures = [getattr(m.task, "temperature", 1.0) for m in loaded]  # each member's own calibration
    model = EnsembleModel([m.model for m in loaded], [w for _, w in chosen], space_of(first.task.name),
                          temperatures)
    model.to(target).eval()
    # the members' calibrated probabilities are averaged; the ensemble's pseudo-logits are log-probabilities
    predictor = EnsemblePredictor(model, first.config, first.preprocessors, uncalibrated(first.task), folder,
                                  data)
    predictor.warm_up()
    return predictor


def uncalibrated(task: Task) -> Task:
    """The task without its temperature (members calibrated apart still predict the same task)."""
    return task_from_state({k: v for k, v in task.state_dict().items() if k != "temperature"})


def _check_members(folder: Path, loaded: list[LoadedModel]) -> None:
    """Raises ModelDirError unless every member has the first one's task, inputs and preprocessor state."""
    first = loaded[0]
    states = {n: p.state_dict() for n, p in first.preprocessors.items()}
    for member in loaded[1:]:
        same = (uncalibrated(member.task) == uncalibrated(first.task)
                and member.config.input_names() == first.config.input_names()
                and {n: p.state_dict() for n, p in member.preprocessors.items()} == states)
        if not same:
            raise ModelDirError(
                f"{folder}: member {member.folder.name} was not trained on the same task, inputs and "
                f"preprocessing as member {first.folder.name}; the folders do not belong together: restore "
                "the ensemble folder from the original, or re-train it"
            )

"""Fitting a trained model's linear read-out: the logistic regression on training rows, its strength, the
two temperatures and the blend weight on validation rows."""

from __future__ import annotations

import warnings

import numpy as np
import torch
from rich.console import Console
from sklearn.exceptions import ConvergenceWarning
from torch import Tensor

from omnifuse.config.sections import ReadoutConfig
from omnifuse.data.collate import Example, batches
from omnifuse.evaluation.calibration import MIN_CALIBRATION_ROWS, fit_temperature
from omnifuse.layers.modes import evaluating
from omnifuse.model import MultimodalModel
from omnifuse.readout.module import LinearReadout

# C of the logistic regression on standardised features, strongest first (ties go to the stronger): on
# unseen voices the best were 1e-4 to 1e-3, far stronger than the baseline's grid
C_GRID = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 1.0)
BLEND_STEP = 0.05  # the blend weight's grid step in [0, readout.weight]
MAX_ITER = 2000


class Rows:
    """Rows' linear features {input: (N, S)}, presence {input: (N,)}, head logits (N, C), targets (N,)."""

    def __init__(self, model: MultimodalModel, examples: list[Example]) -> None:
        readout = model.readout
        assert readout is not None
        device = next(model.parameters()).device
        parts: dict[str, list[Tensor]] = {n: [] for n in readout.names}
        present: dict[str, list[Tensor]] = {n: [] for n in readout.names}
        logits, targets = [], []
        with torch.inference_mode(), evaluating(model):
            for batch in batches(examples, 64):
                batch = batch.to(device)
                for name, values in model.linear_features(batch.inputs, readout.names).items():
                    parts[name].append(values.float().cpu())
                    present[name].append(batch.presence[name].cpu())
                logits.append(model(batch.inputs, batch.presence).float().cpu())  # unfitted: the head's
                assert batch.target is not None, "labelled examples carry targets"
                targets.append(batch.target.cpu())
        self.features = {n: torch.cat(v) for n, v in parts.items()}
        self.presence = {n: torch.cat(v) for n, v in present.items()}
        self.logits = torch.cat(logits).numpy().astype(np.float64)
        self.targets = torch.cat(targets).long().numpy()


def fit_readout(model: MultimodalModel, train: list[Example], valid: list[Example], options: ReadoutConfig,
                seed: int, console: Console) -> None:
    """Fits ``model.readout`` in place (before the OOD gate and the temperature, which see its output).

    The logistic regression's strength is chosen on the validation rows, then each part's temperature.
    The blend weight is ``options.weight`` when the read-out reads every input of the model: a validation
    split of one unseen voice cannot tell which of two good models generalises to the next voice, and
    weights fitted on few rows do worse than fixed ones out of sample (README, "Defaults and why"). When the
    model has inputs the read-out does not read (a fused model), the weight is chosen on validation.

    Left unfitted (the head alone), and so said, with fewer than ``MIN_CALIBRATION_ROWS`` validation rows
    or when scikit-learn cannot fit the training rows (e.g. one class)."""
    readout = model.readout
    if readout is None or not train:
        return
    if len(valid) < MIN_CALIBRATION_ROWS:
        console.print(f"Linear read-out not fitted: {len(valid)} validation row(s), at least "
                      f"{MIN_CALIBRATION_ROWS} are needed")
        return
    if len(train) > options.max_rows:
        chosen = np.random.default_rng(seed).choice(len(train), options.max_rows, replace=False)
        train = [train[i] for i in sorted(chosen)]
    fit_rows, check_rows = Rows(model, train), Rows(model, valid)
    _fit_scales(readout, fit_rows)
    x_train = readout.standardised(fit_rows.features, fit_rows.presence).double().numpy()  # (N, S)
    x_valid = readout.standardised(check_rows.features, check_rows.presence).double().numpy()
    found = _logistic(x_train, fit_rows.targets, x_valid, check_rows.targets, readout.bias.shape[0])
    if found is None:
        console.print("Linear read-out not fitted: the training rows hold a single class")
        return
    weight, bias, strength = found
    readout.weight.copy_(torch.from_numpy(weight))
    readout.bias.copy_(torch.from_numpy(bias))
    linear = x_valid @ weight + bias  # (N, C)
    t_head = fit_temperature(check_rows.logits, check_rows.targets) or 1.0
    t_linear = fit_temperature(linear, check_rows.targets) or 1.0
    blend = options.weight  # the read-out sees all the model sees: a fixed share (README, "Defaults and why")
    if set(readout.names) != set(model.encoders):  # it sees a part: its share must be earned on validation
        blend = _blend(check_rows.logits / t_head, linear / t_linear, check_rows.targets, options.weight)
    readout.temperatures.copy_(torch.tensor([t_head, t_linear]))
    readout.blend.fill_(blend)
    readout.fitted.fill_(True)
    how = "fixed" if set(readout.names) == set(model.encoders) else "chosen on the validation rows"
    console.print(f"Linear read-out on {', '.join(readout.names)} (C={strength:g}): weight {blend:.2f} "
                  f"in the blend ({how})")


def _fit_scales(readout: LinearReadout, rows: Rows) -> None:
    """Each input's mean and standard deviation over the training rows it is present in."""
    for name in readout.names:
        values = rows.features[name][rows.presence[name]]  # (N', S)
        if len(values) < 2:
            continue
        readout.scales[name].fit(values)  # type: ignore[operator]


def _logistic(x_train: np.ndarray, y_train: np.ndarray, x_valid: np.ndarray, y_valid: np.ndarray,
              classes: int) -> tuple[np.ndarray, np.ndarray, float] | None:
    """(weight (S, C), bias (C,), C) of the logistic regression best on the validation rows (accuracy,
    then log loss); classes the training rows lack get a very low bias. None: fewer than two classes."""
    from sklearn.linear_model import LogisticRegression

    seen = np.unique(y_train)
    if len(seen) < 2:
        return None
    best: tuple[tuple[float, float], np.ndarray, np.ndarray, float] | None = None
    for strength in C_GRID:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            fitted = LogisticRegression(C=strength, max_iter=MAX_ITER).fit(x_train, y_train)
        weight = np.zeros((x_train.shape[1], classes))
        bias = np.full(classes, -30.0)  # a class never seen in training: never predicted
        coef, intercept = fitted.coef_, fitted.intercept_
        if len(seen) == 2:  # scikit-learn's binary form: one row of log-odds for the second class
            coef = np.stack([-coef[0] / 2, coef[0] / 2])
            intercept = np.array([-intercept[0] / 2, intercept[0] / 2])
        weight[:, seen], bias[seen] = coef.T, intercept
        key = selection_key_of(x_valid @ weight + bias, y_valid)
        if best is None or key > best[0]:
            best = (key, weight, bias, strength)
    assert best is not None
    return best[1], best[2], best[3]


def selection_key_of(logits: np.ndarray, targets: np.ndarray) -> tuple[float, float]:
    """(accuracy, minus the log loss) of (N, C) logits: higher is better."""
    accuracy = float(np.mean(logits.argmax(axis=1) == targets))
    log_probabilities = logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)  # (N, C)
    return accuracy, float(np.mean(log_probabilities[np.arange(len(targets)), targets]))


def _blend(head: np.ndarray, linear: np.ndarray, targets: np.ndarray, max_weight: float) -> float:
    """The weight w in [0, max_weight] (steps of ``BLEND_STEP``) whose blend of the two calibrated parts
    has the lowest validation log loss (ties go to the smaller w)."""
    own = head - np.logaddexp.reduce(head, axis=1, keepdims=True)  # (N, C) log-probabilities
    other = linear - np.logaddexp.reduce(linear, axis=1, keepdims=True)
    steps = int(round(max_weight / BLEND_STEP))
    grid = [min(i * BLEND_STEP, max_weight) for i in range(steps + 1)]
    losses = [-float(np.mean(((1 - w) * own + w * other)[np.arange(len(targets)), targets])) for w in grid]
    return grid[int(np.argmin(losses))]

"""Fitting a trained model's linear read-out: the logistic regression on training rows, its strength, the
two temperatures and the blend weight on validation rows."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
from rich.console import Console
from scipy import sparse
from sklearn.exceptions import ConvergenceWarning
from torch import Tensor

from omnifuse.baselines.models import classification_key
from omnifuse.config.sections import ReadoutConfig
from omnifuse.data.collate import Example, batches
from omnifuse.evaluation.calibration import MIN_CALIBRATION_ROWS, fit_temperature
from omnifuse.layers.modes import evaluating
from omnifuse.model import MultimodalModel
from omnifuse.readout.module import LinearReadout

# C of the logistic regression on unit-energy blocks, strongest first (ties go to the stronger). On
# unseen voices the best for mfcc_stats' 480 statistics were 0.05 to 0.5, far stronger than the
# baselines' grid (0.1 to 1000); TF-IDF and embeddings take 1 to 100
C_GRID = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 1000.0)
BLEND_STEP = 0.05  # the blend weight's grid step in [0, readout.weight]
MAX_ITER = 2000
Matrix = Any  # an (N, S) numpy array or scipy sparse matrix


class Rows:
    """Rows' read-out features {input: (N, S) tensor, or CSR for a sparse input}, presence {input: (N,)},
    the model's (unblended) logits (N, C) and targets (N,), from one encoder pass in eval mode."""

    def __init__(self, model: MultimodalModel, examples: list[Example]) -> None:
        readout = model.readout
        assert readout is not None
        device = next(model.parameters()).device
        parts: dict[str, list[Any]] = {n: [] for n in readout.names}
        present: dict[str, list[Tensor]] = {n: [] for n in readout.names}
        logits, targets = [], []
        with torch.inference_mode(), evaluating(model):
            for batch in batches(examples, 64):
                batch = batch.to(device)
                encoded = model.encode(batch.inputs)
                for name, values in model.readout_features(batch.inputs, encoded).items():
                    values = values.float().cpu()
                    parts[name].append(sparse.csr_matrix(values.numpy()) if readout.inputs[name].sparse
                                       else values)
                    present[name].append(batch.presence[name].cpu())
                gated = model.gated(encoded, batch.presence)
                # unfitted, the read-out leaves the head's logits
                logits.append(model.decide(batch.inputs, encoded, gated).float().cpu())
                assert batch.target is not None, "labelled examples carry targets"
                targets.append(batch.target.cpu())
        self.features: dict[str, Any] = {  # a dense input's (N, S) tensor, a sparse input's CSR
            n: sparse.vstack(v).tocsr() if readout.inputs[n].sparse else torch.cat(v)
            for n, v in parts.items()}
        self.presence = {n: torch.cat(v) for n, v in present.items()}
        self.logits = torch.cat(logits).numpy().astype(np.float64)
        self.targets = torch.cat(targets).long().numpy()


def fit_readout(model: MultimodalModel, train: list[Example], valid: list[Example], options: ReadoutConfig,
                seed: int, console: Console) -> None:
    """Fits ``model.readout`` in place (before the OOD gate and the temperature, which see its output).

    The logistic regression's strength is chosen on the validation rows, then each part's temperature.
    The blend weight is ``options.weight`` when the read-out reads every input of the model and is as
    accurate as the head on the validation rows (within a standard error): a validation split of one unseen
    voice cannot tell which of two good models generalises to the next voice, and weights fitted on few
    rows do worse than fixed ones out of sample (README, "Defaults and why"). Otherwise (a fused model with
    inputs the read-out does not read, or a read-out clearly worse than the head) the weight is chosen on
    the validation rows within [0, ``options.weight``].

    Left unfitted (the head alone), and so said, with fewer than ``MIN_CALIBRATION_ROWS`` validation rows
    or when the training rows hold a single class."""
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
    x_train, x_valid = design(readout, fit_rows), design(readout, check_rows)
    found = _logistic(x_train, fit_rows.targets, x_valid, check_rows.targets, readout.bias.shape[0])
    if found is None:
        console.print("Linear read-out not fitted: the training rows hold a single class")
        return
    weight, bias, strength = found
    readout.weight.copy_(torch.from_numpy(weight))
    readout.bias.copy_(torch.from_numpy(bias))
    linear = np.asarray(x_valid @ weight) + bias  # (N, C)
    t_head = fit_temperature(check_rows.logits, check_rows.targets) or 1.0
    t_linear = fit_temperature(linear, check_rows.targets) or 1.0
    fixed = set(readout.names) == set(model.encoders) and _as_good(linear, check_rows)
    blend = options.weight if fixed else _blend(check_rows.logits / t_head, linear / t_linear,
                                                check_rows.targets, options.weight)
    readout.temperatures.copy_(torch.tensor([t_head, t_linear]))
    readout.blend.fill_(blend)
    readout.fitted.fill_(True)
    how = "fixed" if fixed else "chosen on the validation rows"
    console.print(f"Linear read-out on {', '.join(readout.names)} (C={strength:g}): weight {blend:.2f} "
                  f"in the blend ({how})")


def _as_good(linear: np.ndarray, rows: Rows) -> bool:
    """Whether the read-out's (N, C) validation logits are at least as accurate as the head's, less one
    standard error of the head's accuracy on these N rows."""
    head = float(np.mean(rows.logits.argmax(axis=1) == rows.targets))
    ours = float(np.mean(linear.argmax(axis=1) == rows.targets))
    return ours >= head - float(np.sqrt(head * (1.0 - head) / len(rows.targets)))


def _fit_scales(readout: LinearReadout, rows: Rows) -> None:
    """Each dense input's per-feature statistics, then every input's block scale (unit mean energy), over
    the training rows it is present in."""
    for i, name in enumerate(readout.names):
        present = rows.presence[name]
        if int(present.sum()) < 2:
            continue
        values = rows.features[name]
        if readout.inputs[name].sparse:
            kept = values[present.numpy()]
            energy = float(kept.multiply(kept).sum()) / kept.shape[0]
        else:
            readout.scales[name].fit(values[present])  # type: ignore[operator]
            energy = float((readout.centred(name, values[present]) ** 2).sum(dim=1).mean())
        readout.blocks[i] = 1.0 / np.sqrt(energy) if energy > 1e-12 else 1.0


def design(readout: LinearReadout, rows: Rows) -> Matrix:
    """The (N, S) matrix the regression reads (``LinearReadout.standardised``), sparse when an input is."""
    blocks: list[Matrix] = []
    for i, name in enumerate(readout.names):
        keep = rows.presence[name].numpy().astype(np.float64)[:, None] * float(readout.blocks[i])  # (N, 1)
        values = rows.features[name]
        if readout.inputs[name].sparse:
            blocks.append(values.multiply(keep).tocsr())
        else:
            blocks.append(readout.centred(name, values).double().numpy() * keep)
    if any(sparse.issparse(b) for b in blocks):
        return sparse.hstack([sparse.csr_matrix(b) for b in blocks]).tocsr()
    return np.concatenate(blocks, axis=1)


def _logistic(x_train: Matrix, y_train: np.ndarray, x_valid: Matrix, y_valid: np.ndarray,
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
        key = classification_key(np.asarray(x_valid @ weight) + bias, y_valid)
        if best is None or key > best[0]:
            best = (key, weight, bias, strength)
    assert best is not None
    return best[1], best[2], best[3]
def _blend(head: np.ndarray, linear: np.ndarray, targets: np.ndarray, max_weight: float) -> float:
    """The weight w in [0, max_weight] (steps of ``BLEND_STEP``) whose blend of the two calibrated parts
    has the lowest validation log loss (ties go to the smaller w)."""
    own = head - np.logaddexp.reduce(head, axis=1, keepdims=True)  # (N, C) log-probabilities
    other = linear - np.logaddexp.reduce(linear, axis=1, keepdims=True)
    steps = int(round(max_weight / BLEND_STEP))
    grid = [min(i * BLEND_STEP, max_weight) for i in range(steps + 1)]
    losses = [-float(np.mean(((1 - w) * own + w * other)[np.arange(len(targets)), targets])) for w in grid]
    return grid[int(np.argmin(losses))]

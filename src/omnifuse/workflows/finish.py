"""What every trained model gets before its folder is saved (``omnifuse train``, ``--preset best``'s members,
``omnifuse tune``'s trials): LoRA adapters merged, the linear read-out and the OOD gate fitted, then the
temperature fitted on the gated validation logits."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from omnifuse.config.sections import Config
from omnifuse.data.collate import Example, batches
from omnifuse.encoders.hf_adapters import merge_adapters
from omnifuse.evaluation.temperature import calibrates, with_temperature
from omnifuse.model import MultimodalModel
from omnifuse.ood.fit import fit_gate
from omnifuse.readout.fit import fit_readout
from omnifuse.tasks.base import Task
from omnifuse.training.batched_forward import run_model
from omnifuse.workflows.prepare import PreparedData


def finish_model(cfg: Config, data: PreparedData, model: MultimodalModel, console: Console) -> Task:
    """Merges ``model``'s adapters and fits its gate in place; returns the task its folder is saved with
    (``data.task``, or a calibrated copy of it: ``training.calibrate``)."""
    merge_adapters(model)  # LoRA: the folder holds merged weights, so loading needs no peft
    valid = data.examples.get("valid", [])
    # the read-out first: the gate's confidence statistics and the temperature see the blended output
    fit_readout(model, data.examples.get("train", []), valid, cfg.readout, cfg.training.seed, console)
    if model.gate is not None:  # before the temperature: it is fitted on the gated logits
        fit_gate(model, data.examples.get("train", []), valid, cfg.ood, cfg.training.seed, console)
    if not calibrates(cfg, data.task, len(valid), console):
        return data.task
    return with_temperature(data.task, *logits_of(model, valid), console)


def logits_of(model: MultimodalModel, examples: list[Example]) -> tuple[Any, Any]:
    """(N, C) float logits and (N,) class indices of labelled examples, as numpy."""
    device = next(model.parameters()).device
    logits, targets, _ = run_model(model, list(batches(examples, 64)), device)
    assert targets is not None, "labelled examples carry targets"
    return logits.float().numpy(), targets.long().numpy()

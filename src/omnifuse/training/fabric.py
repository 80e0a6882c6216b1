"""Lightning Fabric for a run: the launched Fabric, and the precisions and strategies omnifuse runs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from lightning_fabric import Fabric

from omnifuse.errors import ConfigError

if TYPE_CHECKING:
    from omnifuse.config.sections import Config, TrainingConfig

PRECISIONS = ("32-true", "bf16-mixed", "16-mixed")  # fp32, or autocast with fp32 master weights
STRATEGIES = ("auto", "ddp", "fsdp")


def make_fabric(cfg: TrainingConfig, find_unused_parameters: bool = False) -> Fabric:
    """A launched Fabric for the configured accelerator, devices, nodes, precision and strategy.

    With ``devices > 1`` on one machine and no external launcher (torchrun, SLURM), ``launch()`` starts
    the other ranks by re-running this command; they continue from here.

    Args:
        cfg: training options.
        find_unused_parameters: DDP option; needed when some parameters get no gradient in a step
            (frozen encoders).

    Raises:
        ConfigError: a precision the device cannot run (16-mixed on the CPU, bf16 on an old GPU).
    """
    check_precision(cfg.precision, cfg.accelerator)
    strategy: Any = cfg.strategy
    if cfg.strategy == "ddp":
        from lightning_fabric.strategies import DDPStrategy

        strategy = DDPStrategy(find_unused_parameters=find_unused_parameters)
    precision: Any = cfg.precision
    fabric = Fabric(accelerator=cfg.accelerator, devices=cfg.devices, num_nodes=cfg.num_nodes,
                    precision=precision, strategy=strategy)
    fabric.launch()
    return fabric


def needs_unused_parameters(config: Config) -> bool:
    """Whether DDP must look for parameters without a gradient: some encoder is frozen for a while."""
    return any(config.encoder_of(n).freeze_epochs != 0 for n in config.input_names())


def _device_type(accelerator: str) -> str:
    if accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available()):
        return "cuda"
    if accelerator == "mps" or (accelerator == "auto" and torch.backends.mps.is_available()):
        return "mps"
    return "cpu" if accelerator in ("cpu", "auto") else accelerator


def check_precision(precision: str, accelerator: str) -> None:
    """Raises ConfigError when the device of ``accelerator`` cannot run ``precision``."""
    device = _device_type(accelerator)
    if precision == "16-mixed" and device == "cpu":
        raise ConfigError([
            "training.precision: '16-mixed' needs a GPU (fp16 autocast is not supported on the CPU); "
            "use bf16-mixed on the CPU, or 32-true"
        ])
    if precision == "bf16-mixed" and device == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError([
            f"training.precision: 'bf16-mixed' is not supported by this GPU "
            f"({torch.cuda.get_device_name()}); "
            "use 16-mixed, or 32-true"
        ])

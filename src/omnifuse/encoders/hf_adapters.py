"""Large Hugging Face encoders: gradient checkpointing, and LoRA adapters (peft) merged before saving.

LoRA: https://arxiv.org/abs/2106.09685. Only the low-rank adapters of the chosen projections train (the
rest of the omnifuse model trains as usual); the model folder holds the merged weights, so loading it
needs no peft and gives the same predictions.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from omnifuse.errors import ConfigError, MissingExtraError

PEFT_HINT = "pip install 'omnifuse[lora]'"


def enable_gradient_checkpointing(model: Any, path: str) -> None:
    """Turns on activation recomputation in backward (training mode only): less memory, more compute.

    Raises:
        ConfigError: the model class does not support it.
    """
    if not getattr(model, "supports_gradient_checkpointing", False):
        raise ConfigError([f"{path}.gradient_checkpointing: {type(model).__name__} does not support "
                           "gradient checkpointing; set it to false"])
    kwargs = {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5.2 renamed it
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


def add_lora(model: Any, r: int, alpha: int, dropout: float, targets: tuple[str, ...], path: str) -> Any:
    """``model`` wrapped by peft with LoRA adapters of rank ``r`` on the ``targets`` modules.

    Args:
        model: a transformers model.
        r / alpha / dropout: LoRA rank, scaling numerator and dropout on the adapter input.
        targets: module names to adapt (e.g. query, value); empty: peft's default for the model type.
        path: the option path for messages, e.g. ``columns.review.encoder``.

    Raises:
        ImportError: peft is not installed. ConfigError: no default targets for the model type, or a
            target matches no module.
    """
    try:
        from peft import LoraConfig, get_peft_model
        from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as DEFAULTS
    except ImportError as err:
        raise MissingExtraError(f"LoRA (lora_r > 0) needs peft: {PEFT_HINT}") from err
    model_type = str(model.config.model_type)
    chosen = list(targets) or list(DEFAULTS.get(model_type, []))
    if not chosen:
        raise ConfigError([f"{path}.lora_targets: no default LoRA targets for model type {model_type!r}; "
                           "list the projection modules, e.g. lora_targets: [q_proj, v_proj]"])
    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    unknown = [t for t in chosen if t not in names]
    if unknown:
        linear = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, nn.Linear)})
        raise ConfigError([f"{path}.lora_targets: {', '.join(map(repr, unknown))} match no module of this "
                           f"{model_type} model; its linear layers are {', '.join(linear)}"])
    config = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=chosen)
    return get_peft_model(model, config)


def merge_lora(model: Any) -> Any:
    """The plain transformers model with the adapters merged into its weights (``model`` if it has none)."""
    merge = getattr(model, "merge_and_unload", None)  # only peft models have it
    return model if merge is None else merge()


def merge_adapters(model: nn.Module) -> None:
    """Merges the LoRA adapters of every encoder of ``model`` in place (before saving a model folder)."""
    for encoder in model.modules():
        merge: Any = getattr(encoder, "merge_adapters", None)  # encoders that can hold adapters
        if callable(merge) and encoder is not model:
            merge()
    own: Any = getattr(model, "merge_own_adapters", None)  # a generation model's LoRA-adapted LM
    if callable(own):
        own()

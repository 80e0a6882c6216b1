"""The only place where configuration becomes modules and preprocessors."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

from torch import nn

from omnifuse import catalog  # noqa: F401  (fills the registries)
from omnifuse.config.binding import encoder_options, fusion_options
from omnifuse.config.sections import ComponentConfig, Config
from omnifuse.data.dataset import input_specs
from omnifuse.data.preprocess.base import Preprocessor
from omnifuse.encoders.base import ENCODERS, Encoder
from omnifuse.fusion.base import FUSIONS
from omnifuse.heads.base import HEADS
from omnifuse.layers.standardize import FeatureStandardizer
from omnifuse.model import MultimodalModel
from omnifuse.ood.gate import ReliabilityGate
from omnifuse.readout.module import LinearReadout, ReadoutInput
from omnifuse.tasks.base import Task
from omnifuse.tasks.classification import ClassificationTask

# Starts an encoder from pretrained weights: (encoder, its component config, its column) -> None.
InitWeights = Callable[[Encoder, ComponentConfig, str], None]


def make_preprocessors(config: Config) -> dict[str, Preprocessor]:
    """One unfitted preprocessor per model input."""
    preprocessors: dict[str, Preprocessor] = {}
    for spec in input_specs(config):
        component = config.encoder_of(spec.name)
        entry = ENCODERS.get(component.name)
        options = encoder_options(component, f"{spec.name}.encoder")
        preprocessors[spec.name] = entry.make_preprocessor(options, spec)
    if config.generation is not None:  # lm_prompt inputs are written in the language model's tokens
        from omnifuse.generation.prompt import PromptPreprocessor

        for pre in preprocessors.values():
            if isinstance(pre, PromptPreprocessor):
                pre.lm = config.generation.lm
    return preprocessors


def build_encoders(
    config: Config, preprocessors: dict[str, Preprocessor], assets: Path | None,
    init_weights: InitWeights | None = None,
) -> dict[str, Encoder]:
    """Encoders for every input; ``assets`` is the model folder's assets dir when loading a saved model.
    ``init_weights(encoder, component, column)`` starts an encoder whose config names ``init_from`` from
    those weights (training passes ``contrastive.init_from.init_encoder``; a saved model has its own)."""
    return {spec.name: build_encoder(config, spec.name, preprocessors[spec.name], assets, init_weights)
            for spec in input_specs(config)}


def build_encoder(
    config: Config, name: str, preprocessor: Preprocessor, assets: Path | None = None,
    init_weights: InitWeights | None = None,
) -> Encoder:
    """Input ``name``'s encoder (see ``build_encoders``)."""
    component = config.encoder_of(name)
    options = encoder_options(component, f"{name}.encoder")
    folder = None if assets is None else assets / name / "encoder"
    encoder = ENCODERS.get(component.name).build(options, preprocessor, folder)
    if init_weights is not None and assets is None and component.init_from is not None:
        init_weights(encoder, component, name)
    return encoder


def make_task_for(config: Config) -> Task:
    """The unfitted task of ``config`` (the contrastive one is shaped by the contrastive section)."""
    if config.label.task == "generation":
        from omnifuse.tasks.generation import GenerationTask

        gen = config.generation
        assert gen is not None, "filled in at load (config.fill_defaults)"
        return GenerationTask(gen.max_answer_tokens, gen.min_count, lm=gen.lm)
    if config.label.task == "contrastive":
        from omnifuse.tasks.contrastive import ContrastiveTask

        section = config.contrastive
        assert section is not None, "filled in at load (config.fill_defaults)"
        return ContrastiveTask(section.columns, section.embed_dim, section.loss, section.queue_size,
                               mask_duplicates=section.mask_duplicates)
    from omnifuse.tasks import make_task
    from omnifuse.tasks.classification import ClassificationTask

    task = make_task(config.label.task, config.label.delimiter)
    if isinstance(task, ClassificationTask):
        task.label_smoothing = config.training.label_smoothing
    return task


def build_contrastive_model(
    config: Config, preprocessors: dict[str, Preprocessor], assets: Path | None = None,
    init_weights: InitWeights | None = None,
) -> MultimodalModel:
    """A ContrastiveModel: one tower per contrastive column and the projection to the shared space."""
    from omnifuse.contrastive import losses
    from omnifuse.contrastive.model import ContrastiveModel, ProjectionFusion

    section = config.contrastive
    assert section is not None, "filled in at load (config.fill_defaults)"
    towers = build_encoders(config, preprocessors, assets, init_weights)
    siglip = section.loss == "siglip"
    scale = losses.SIGLIP_INIT_LOGIT_SCALE if siglip else math.log(1.0 / section.temperature)
    projection = ProjectionFusion(
        {n: e.output_dim for n, e in sorted(towers.items())}, section.embed_dim, scale,
        losses.SIGLIP_INIT_BIAS if siglip else 0.0,
        learn_scale=section.learn_temperature, learn_bias=siglip and section.learn_temperature,
    )
    return ContrastiveModel(towers, projection)


def build_model(
    config: Config, preprocessors: dict[str, Preprocessor], task: Task, assets: Path | None = None,
    init_weights: InitWeights | None = None,
) -> MultimodalModel:
    """The whole model for ``config``; preprocessors must be fitted (vocabulary sizes come from them).
    ``init_weights``: see ``build_encoders``."""
    if config.label.task == "contrastive":
        return build_contrastive_model(config, preprocessors, assets, init_weights)
    if config.label.task == "generation":
        return build_generation_model(config, preprocessors, task, assets, init_weights)
    encoders = build_encoders(config, preprocessors, assets, init_weights)
    fusion_entry = FUSIONS.get(config.fusion.name)
    dims = {n: e.output_dim for n, e in sorted(encoders.items())}
    fusion = fusion_entry.build(fusion_options(config.fusion), dims)
    head = HEADS.get(task.name)(
        fusion.output_dim, task.output_dim, config.head.hidden_dim, config.head.dropout
    )
    aux_heads = {}
    # one linear head per input, for training only: a saved model folder holds none (artifacts.save_model)
    if config.training.aux_loss > 0 and len(encoders) > 1 and assets is None:
        aux_heads = {n: HEADS.get(task.name)(e.output_dim, task.output_dim, 0, 0.0)
                     for n, e in encoders.items()}
    return MultimodalModel(encoders, fusion, head, aux_heads, standardizers(config, encoders),
                           _gate(config, task, dims), _readout(config, task, encoders))


def _readout(config: Config, task: Task, encoders: dict[str, Encoder]) -> LinearReadout | None:
    """The linear read-out (``readout.enabled``) of a single-label classifier over the inputs whose
    encoders have linear features or stay frozen for the whole run (their pooled embedding); unfitted, so
    it changes nothing until ``readout.fit`` fits it."""
    inputs = {}
    for name, encoder in encoders.items():
        if encoder.linear_dim > 0:
            inputs[name] = ReadoutInput(encoder.linear_dim, "linear", encoder.linear_sparse)
        elif config.encoder_of(name).freeze_epochs == -1:
            inputs[name] = ReadoutInput(encoder.output_dim, "pooled")
    if not config.readout.enabled or not inputs or not isinstance(task, ClassificationTask):
        return None
    return LinearReadout(inputs, len(task.classes))


def _gate(config: Config, task: Task, dims: dict[str, int]) -> ReliabilityGate | None:
    """The OOD gate (``ood.enabled``): unfitted, so it changes nothing until ``ood.fit`` fits it."""
    if not config.ood.enabled:
        return None
    groups = len(task.classes) if isinstance(task, ClassificationTask) else 1
    return ReliabilityGate(dims, groups, drop=config.ood.action == "drop")


def build_generation_model(
    config: Config, preprocessors: dict[str, Preprocessor], task: Task, assets: Path | None = None,
    init_weights: InitWeights | None = None,
) -> MultimodalModel:
    """A GenerationModel: every input's encoder, the prefix projection and the language model (its
    vocabulary comes from the fitted task; a pretrained LM is loaded from ``generation.lm`` when training,
    rebuilt from the model folder's ``assets/_generation/lm/config.json`` when loading)."""
    from omnifuse.generation.lm import embedding_width
    from omnifuse.generation.model import GenerationModel
    from omnifuse.generation.names import TINY_DECODER
    from omnifuse.generation.projector import PrefixProjection
    from omnifuse.generation.prompt import PromptEncoder
    from omnifuse.tasks.generation import GenerationTask

    section = config.generation
    assert section is not None and isinstance(task, GenerationTask), "filled in at load (fill_defaults)"
    encoders = build_encoders(config, preprocessors, assets, init_weights)
    lm = _language_model(config, task, assets)
    pretrained = section.lm != TINY_DECODER
    if pretrained and section.train_lm != "full":  # auto / none: LLaVA's align stage, the LM stays as is
        for param in lm.parameters():
            param.requires_grad_(False)
    if pretrained and section.train_lm == "lora" and assets is None:  # a saved folder holds merged weights
        from omnifuse.encoders.hf_adapters import add_lora

        lm = add_lora(lm, section.lora_r, section.lora_alpha, 0.05, tuple(section.lora_targets), "generation")
    width = embedding_width(lm, section.lm)
    for encoder in encoders.values():
        if isinstance(encoder, PromptEncoder):
            encoder.attach(lm, width)
    dims = {n: e.output_dim for n, e in sorted(encoders.items()) if not isinstance(e, PromptEncoder)}
    prompt = sum(getattr(preprocessors[n], "max_tokens", 0) for n in encoders if n not in dims)
    check_context(lm, len(dims) * section.prefix_tokens, prompt, section.max_answer_tokens)
    projection = PrefixProjection(dims, width, section.prefix_tokens, section.projector)
    return GenerationModel(encoders, projection, lm, task.special, pretrained_lm=pretrained)


def check_context(lm: nn.Module, prefix: int, prompt: int, answer: int) -> None:
    """The longest sequence the model reads (prefix + prompt + begin token + answer + end token) fits the
    LM's positions.

    Raises:
        ConfigError: it does not, with the sizes and what to lower.
    """
    from omnifuse.errors import ConfigError

    context = getattr(getattr(lm, "config", None), "max_position_embeddings", None)
    needed = prefix + prompt + answer + 2
    if isinstance(context, int) and needed > context:
        raise ConfigError([f"generation: the longest sequence is {needed} tokens ({prefix} prefix, "
                           f"{prompt} prompt (lm_prompt max_tokens), {answer} answer (max_answer_tokens), "
                           f"begin and end) but the language model reads at most {context}; lower "
                           "max_tokens, max_answer_tokens or prefix_tokens"])


def _language_model(config: Config, task: Task, assets: Path | None) -> nn.Module:
    """tiny_decoder, a pretrained LM (training) or its architecture from the saved config (loading)."""
    from omnifuse.generation.lm import lm_from_config_folder, load_pretrained_lm, tiny_decoder
    from omnifuse.generation.names import GENERATION_ASSETS, TINY_DECODER
    from omnifuse.tasks.generation import GenerationTask

    section = config.generation
    assert section is not None and isinstance(task, GenerationTask)
    if section.lm == TINY_DECODER:
        return tiny_decoder(section, len(task.vocab))
    if assets is not None:
        return lm_from_config_folder(assets / GENERATION_ASSETS / "lm")
    return load_pretrained_lm(section.lm)


def standardizers(config: Config, encoders: dict[str, Encoder]) -> dict[str, FeatureStandardizer]:
    """One (unfitted) FeatureStandardizer per input whose encoder stays frozen for the whole run
    (``freeze_epochs: -1``), when ``training.standardize_frozen`` is on; fitted by training."""
    if not config.training.standardize_frozen:
        return {}
    return {n: FeatureStandardizer(e.output_dim) for n, e in encoders.items()
            if config.encoder_of(n).freeze_epochs == -1}

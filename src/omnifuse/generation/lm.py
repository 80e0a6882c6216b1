"""The causal language models a generation model writes with."""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import nn

from omnifuse.generation.vocab import BOS_ID, EOS_ID, PAD_ID

if TYPE_CHECKING:
    from omnifuse.config.sections import GenerationConfig

CONTEXT = 512  # positions of tiny_decoder: prefix + begin token + answer must fit


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

"""GenerationModel: encoders -> a prefix projection -> a causal language model that writes the target."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from omnifuse.encoders.base import Encoder
from omnifuse.generation.projector import PrefixProjection
from omnifuse.generation.prompt import PromptEncoder
from omnifuse.generation.tokenizer import SpecialIds
from omnifuse.generation.vocab import WordVocab
from omnifuse.model import MultimodalModel
from omnifuse.tasks.generation import IGNORE


@dataclass(frozen=True)
class Decoding:
    """How ``generate`` picks tokens: greedy (temperature 0, one beam), sampling or beam search."""

    max_new_tokens: int = 32
    num_beams: int = 1
    temperature: float = 0.0  # > 0: sample from the softmax at this temperature
    top_k: int = 0  # sampling: only the k most likely tokens (0: all)
    top_p: float = 1.0  # sampling: the smallest set of tokens whose probability reaches p
    repetition_penalty: float = 1.0
    seed: int | None = None  # sampling: the same seed gives the same text


class GenerationModel(MultimodalModel):
    """Every input's encoder, ``PrefixProjection`` in the fusion slot and a causal LM in the head slot.

    The LM reads ``[prefix (inputs x K embeddings), <s>, target tokens]``; ``forward`` scores the target
    tokens (teacher forcing) and ``generate`` writes new ones after ``[prefix, <s>]``. The prefix has the
    same length on every row (an absent input's embeddings are masked out, not removed), so a batch needs
    no padding and batched generation equals one row at a time.
    """

    reads_targets = True  # the training loop passes the targets to forward (teacher forcing)

    def __init__(self, encoders: dict[str, Encoder], projection: PrefixProjection, lm: nn.Module,
                 special: SpecialIds = WordVocab.special, pretrained_lm: bool = False) -> None:
        super().__init__(encoders, projection, lm)
        self.special = special  # the tokenizer's begin, end and pad ids
        self.pretrained_lm = pretrained_lm  # its config.json goes into the model folder's assets

    @property
    def projection(self) -> PrefixProjection:
        assert isinstance(self.fusion, PrefixProjection)
        return self.fusion

    @property
    def lm(self) -> Any:
        """The causal language model (a transformers ``PreTrainedModel``)."""
        return self.head

    @property
    def prompt_inputs(self) -> list[str]:
        """The ``lm_prompt`` inputs: read as the LM's own tokens, after the projected media."""
        return [n for n, e in self.encoders.items() if isinstance(e, PromptEncoder)]

    def prefix(self, inputs: dict[str, dict[str, Tensor]],
               presence: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """(B, P + 1, H) embeddings of ``[media prefix, prompt tokens, <s>]`` and their (B, P + 1) mask,
        left-aligned: each row's masked positions (absent inputs, prompt padding) come first, so that the
        real ones are contiguous and end at the begin token, as left-padded generation expects."""
        features = self.encode(inputs)
        prompts = self.prompt_inputs
        media = {n: o for n, o in features.items() if n not in prompts}
        projected, present = self.projection.prefix(media, {n: presence[n] for n in media})  # (B, P, H)
        parts, masks = [projected], [present]
        for name in prompts:
            tokens, real = features[name].tokens, features[name].mask  # (B, T, H), (B, T)
            assert tokens is not None and real is not None, "PromptEncoder returns tokens and a mask"
            parts.append(tokens.to(parts[0].dtype))
            masks.append(real & presence[name].to(torch.bool)[:, None])
        rows = parts[0].shape[0]
        begin = torch.full((rows, 1), self.special.bos, device=parts[0].device)  # (B, 1)
        parts.append(self.lm.get_input_embeddings()(begin).to(parts[0].dtype))  # (B, 1, H)
        masks.append(torch.ones(rows, 1, dtype=torch.bool, device=parts[0].device))
        return left_align(torch.cat(parts, dim=1), torch.cat(masks, dim=1))

    def forward(self, inputs: dict[str, dict[str, Tensor]], presence: dict[str, Tensor],
                targets: Tensor | None = None) -> Tensor:
        """Per row ``[summed NLL, target tokens, correctly predicted tokens]`` (B, 3) of ``targets`` (B, L):
        token ids, then the end token, padded with IGNORE (see tasks.generation)."""
        assert targets is not None, "a generation model scores its targets; use generate() to write text"
        prefix, prefix_mask = self.prefix(inputs, presence)  # (B, P + 1, H)
        valid = targets != IGNORE  # (B, L)
        # (B, L - 1): teacher forcing
        inputs_ids = targets[:, :-1].masked_fill(~valid[:, :-1], self.special.pad)
        answer = self.lm.get_input_embeddings()(inputs_ids).to(prefix.dtype)  # (B, L - 1, H)
        embeddings = torch.cat([prefix, answer], dim=1)  # (B, P + L, H)
        mask = torch.cat([prefix_mask, valid[:, :-1]], dim=1).long()
        logits = self.lm(inputs_embeds=embeddings, attention_mask=mask,
                         position_ids=positions(mask)).logits  # (B, P + L, V)
        scored = logits[:, prefix.shape[1] - 1 :].float()  # (B, L, V): position t predicts target t
        nll = F.cross_entropy(scored.transpose(1, 2), targets, ignore_index=IGNORE, reduction="none")  # B, L
        correct = (scored.argmax(dim=-1) == targets) & valid
        return torch.stack([nll.sum(dim=1), valid.sum(dim=1).float(), correct.sum(dim=1).float()], dim=1)

    @torch.inference_mode()
    def generate(self, inputs: dict[str, dict[str, Tensor]], presence: dict[str, Tensor],
                 decoding: Decoding, streamer: Any = None, stopping: Any = None) -> list[list[int]]:
        """The new token ids of each row (without the end token), written after its prefix; ``streamer``
        (one row) receives them as they are written, ``stopping`` (a stopping criterion) can end early."""
        embeddings, mask = self.prefix(inputs, presence)
        options: dict[str, Any] = {
            "max_new_tokens": decoding.max_new_tokens, "num_beams": decoding.num_beams,
            "repetition_penalty": decoding.repetition_penalty, "pad_token_id": self.special.pad,
            "eos_token_id": self.special.eos, "bos_token_id": self.special.bos,
        }
        if decoding.temperature > 0:
            options |= {"do_sample": True, "temperature": decoding.temperature,
                        "top_k": decoding.top_k or None, "top_p": decoding.top_p}
        else:
            options |= {"do_sample": False}
        if streamer is not None:
            options["streamer"] = streamer
        if stopping is not None:
            from transformers import StoppingCriteriaList

            options["stopping_criteria"] = StoppingCriteriaList([stopping])
        with torch.random.fork_rng(devices=[]):
            if decoding.seed is not None:
                torch.manual_seed(decoding.seed)
            out = self.lm.generate(inputs_embeds=embeddings, attention_mask=mask.long(), **options)
        return [until_end(row.tolist(), (self.special.eos, self.special.pad)) for row in out]

    def merge_own_adapters(self) -> None:
        """A LoRA-adapted LM (``train_lm: lora``) with its adapters merged into its weights, so the saved
        folder holds a plain LM (``encoders.hf_adapters.merge_adapters`` calls it before saving)."""
        from omnifuse.encoders.hf_adapters import merge_lora

        self.head = merge_lora(self.head)

    def save_assets(self, folder: Path) -> None:
        """A pretrained LM's ``config.json`` (its weights are in the model's weights file)."""
        if self.pretrained_lm:
            from omnifuse.generation.lm import save_lm_config

            save_lm_config(self.lm, folder)


def left_align(embeddings: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Each row's masked positions moved before its real ones, the order of each kept (B, S, H), (B, S)."""
    order = torch.sort(mask.to(torch.int8), dim=1, stable=True).indices  # (B, S): masked first
    aligned = torch.gather(embeddings, 1, order[:, :, None].expand(-1, -1, embeddings.shape[-1]))
    return aligned, torch.gather(mask, 1, order)


def positions(mask: Tensor) -> Tensor:
    """Position ids counting the real positions only (B, S), as ``generate`` computes them from the mask
    (masked positions get 0; they are never attended to)."""
    return (mask.long().cumsum(dim=1) - 1).clamp(min=0)


def until_end(ids: list[int], ends: tuple[int, int]) -> list[int]:
    """The ids before the first end (or pad) token."""
    for i, token in enumerate(ids):
        if token in ends:
            return ids[:i]
    return ids

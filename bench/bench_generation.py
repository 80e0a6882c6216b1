"""Generation speed: ``GenerationModel.generate`` against ``transformers``' own ``generate`` on the bare LM.

The model: one input (a 64-wide pooled vector, a stand-in for an encoder, so the rows measure the
writing) projected to 4 prefix tokens of ``tiny_decoder`` (128 wide, 2 layers, 2,000 words); weights at
their random start, so greedy decoding rarely meets the end token (every side counts the tokens it really
wrote). Rows:

- ``generation_tokens_per_s_vs_bare_lm``: tokens/s of omnifuse's ``generate`` for one row (the encoder,
  the projection, the prefix and HF's ``generate`` over ``inputs_embeds``) against HF's ``generate`` on
  the bare LM given the same prefix embeddings, made beforehand (goal >= 0.9: omnifuse adds little);
- ``generation_batched_8_vs_one_by_one``: tokens/s writing 8 rows in one call against the same 8 rows one
  call each (goal >= 3: batched decoding amortises the per-step work; rows are left-aligned, so the batch
  writes what each row writes alone);
- ``generation_kv_cache_on_vs_off``: HF ``generate`` on the bare LM with its KV cache against
  ``use_cache=False`` (informational: it shows the cache is used; the gap grows with the length).

``--quick``: 8 new tokens instead of 48, 2 repeats.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from common import BenchResult, Settings, interleaved, median
from torch import Tensor

NAME = "generation"
WIDTH, VOCAB, PREFIX, INPUT_DIM = 128, 2000, 4, 64


class _Vector(torch.nn.Module):
    """An encoder stand-in: the row's vector as its pooled output."""

    output_dim = INPUT_DIM

    def forward(self, inputs: dict[str, Tensor]) -> Any:
        from omnifuse.encoders.base import EncoderOutput

        return EncoderOutput(pooled=inputs["v"])


def _model() -> Any:
    from omnifuse.config.sections import GenerationConfig
    from omnifuse.generation.lm import tiny_decoder
    from omnifuse.generation.model import GenerationModel
    from omnifuse.generation.projector import PrefixProjection

    torch.manual_seed(0)
    section = GenerationConfig(hidden_size=WIDTH, layers=2, heads=2, prefix_tokens=PREFIX)
    projection = PrefixProjection({"x": INPUT_DIM}, WIDTH, PREFIX, "mlp2x_gelu")
    model = GenerationModel({"x": _Vector()}, projection, tiny_decoder(section, VOCAB))  # type: ignore[dict-item]
    return model.eval()


def _rows(count: int) -> tuple[dict[str, dict[str, Tensor]], dict[str, Tensor]]:
    generator = torch.Generator().manual_seed(1)
    vectors = torch.randn(count, INPUT_DIM, generator=generator)  # (count, INPUT_DIM)
    return {"x": {"v": vectors}}, {"x": torch.ones(count, dtype=torch.bool)}


def _counted(fn: Callable[[], list[int]], written: list[int]) -> Callable[[], None]:
    def call() -> None:
        written.append(sum(fn()))

    return call


def _ours(model: Any, rows: int, tokens: int) -> Callable[[], list[int]]:
    from omnifuse.generation.model import Decoding

    inputs, presence = _rows(rows)
    return lambda: [len(ids) for ids in model.generate(inputs, presence, Decoding(max_new_tokens=tokens))]


def _one_by_one(model: Any, rows: int, tokens: int) -> Callable[[], list[int]]:
    """The same rows as ``_ours(model, rows, tokens)``, one ``generate`` call each."""
    from omnifuse.generation.model import Decoding

    inputs, presence = _rows(rows)
    ones = [({"x": {"v": inputs["x"]["v"][i : i + 1]}}, {"x": presence["x"][i : i + 1]}) for i in range(rows)]
    return lambda: [len(model.generate(x, p, Decoding(max_new_tokens=tokens))[0]) for x, p in ones]


def _bare(model: Any, tokens: int, cache: bool) -> Callable[[], list[int]]:
    from omnifuse.generation.model import until_end

    inputs, presence = _rows(1)
    with torch.inference_mode():
        embeddings, mask = model.prefix(inputs, presence)
    special = model.special

    def call() -> list[int]:
        with torch.inference_mode():
            out = model.lm.generate(inputs_embeds=embeddings, attention_mask=mask.long(),
                                    max_new_tokens=tokens, do_sample=False, use_cache=cache,
                                    eos_token_id=special.eos, pad_token_id=special.pad,
                                    bos_token_id=special.bos)
        return [len(until_end(row.tolist(), (special.eos, special.pad))) for row in out]

    return call


def _rate(samples: list[Any], written: list[int]) -> float:
    """Median tokens/s over the timed calls (the first ``len(written) - len(samples)`` were warm-up)."""
    timed = written[len(written) - len(samples):]
    return median([n / s.wall for n, s in zip(timed, samples, strict=True)])


def run(settings: Settings) -> list[BenchResult]:
    """The three rows (see the module docstring)."""
    tokens = 8 if settings.quick else 48
    model = _model()
    counts: dict[str, list[int]] = {k: [] for k in ("ours", "bare", "batched", "single", "nocache")}
    sides = {
        "ours": _counted(_ours(model, 1, tokens), counts["ours"]),
        "bare": _counted(_bare(model, tokens, True), counts["bare"]),
        "batched": _counted(_ours(model, 8, tokens), counts["batched"]),
        "single": _counted(_one_by_one(model, 8, tokens), counts["single"]),
        "nocache": _counted(_bare(model, tokens, False), counts["nocache"]),
    }
    samples = interleaved(sides, settings.repeats, settings.warmup)
    rate = {name: _rate(samples[name], counts[name]) for name in sides}
    note = f"{tokens} new tokens, tiny_decoder {WIDTH} wide, {PREFIX} prefix tokens"
    return [
        BenchResult("generation_tokens_per_s_vs_bare_lm", "tokens/s", rate["ours"], rate["bare"],
                    rate["ours"] / rate["bare"], ">= 0.9", {"tokens": tokens}, note),
        BenchResult("generation_batched_8_vs_one_by_one", "tokens/s", rate["batched"], rate["single"],
                    rate["batched"] / rate["single"], ">= 3.0", {"tokens": tokens}, note),
        BenchResult("generation_kv_cache_on_vs_off", "tokens/s", rate["bare"], rate["nocache"],
                    rate["bare"] / rate["nocache"], "", {"tokens": tokens}, note),
    ]

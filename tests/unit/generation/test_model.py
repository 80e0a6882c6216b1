"""GenerationModel: the loss only on target tokens (checked by hand), batched generation equal to one row
at a time, an absent input masked out of the prefix."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from omnifuse.build import build_model, make_preprocessors, make_task_for
from omnifuse.config.sections import Config
from omnifuse.data.collate import Batch, collate
from omnifuse.data.dataset import input_specs
from omnifuse.generation.model import Decoding, GenerationModel
from omnifuse.generation.vocab import BOS_ID, EOS_ID
from omnifuse.tasks.generation import IGNORE, GenerationTask

NOTES = ["red square", "blue circle", "green star", "red circle"]
CAPTIONS = ["a red square .", "a blue circle .", "a green star !", "a red circle ."]


def _model() -> tuple[GenerationModel, GenerationTask, Batch]:
    torch.manual_seed(0)
    cfg = Config.from_dict({
        "label": {"column": "caption", "task": "generation"},
        "columns": {"note": {"type": "text", "encoder": {"name": "bow", "embed_dim": 8}}},
        "generation": {"hidden_size": 16, "layers": 1, "heads": 2, "prefix_tokens": 2,
                       "max_answer_tokens": 6},
    })
    task = make_task_for(cfg)
    assert isinstance(task, GenerationTask)
    task.fit(CAPTIONS)
    pre = make_preprocessors(cfg)
    pre["note"].fit(NOTES)
    model = build_model(cfg, pre, task)
    assert isinstance(model, GenerationModel) and [s.name for s in input_specs(cfg)] == ["note"]
    from omnifuse.data.collate import Example

    examples = [Example(i, {"note": pre["note"](n)}, {"note": True}, task.encode(c))
                for i, (n, c) in enumerate(zip(NOTES, CAPTIONS, strict=True))]
    return model.eval(), task, collate(examples)


def test_the_loss_counts_target_tokens_only() -> None:
    model, task, batch = _model()
    assert batch.target is not None
    out = model(batch.inputs, batch.presence, batch.target)  # (B, 3)
    prefix, mask = model.prefix(batch.inputs, batch.presence)  # (B, P + 1, H): ends with <s>
    for row in range(len(CAPTIONS)):
        ids = [i for i in batch.target[row].tolist() if i != IGNORE]  # the caption's words, then </s>
        assert ids[-1] == EOS_ID
        inputs = torch.tensor([ids[:-1]])
        embeds = torch.cat([prefix[row : row + 1], model.lm.get_input_embeddings()(inputs)], dim=1)
        logits = model.lm(inputs_embeds=embeds, attention_mask=torch.ones(1, embeds.shape[1])).logits[0]
        scored = logits[prefix.shape[1] - 1 :]  # <s> predicts the first word, ..., the last word </s>
        nll = F.cross_entropy(scored, torch.tensor(ids), reduction="sum")
        torch.testing.assert_close(out[row, 0], nll, rtol=1e-4, atol=1e-4)
        assert out[row, 1] == len(ids)
        assert out[row, 2] == int((scored.argmax(-1) == torch.tensor(ids)).sum())
    assert BOS_ID not in batch.target


def test_batched_greedy_generation_equals_one_row_at_a_time() -> None:
    model, _, batch = _model()
    decoding = Decoding(max_new_tokens=5)
    together = model.generate(batch.inputs, batch.presence, decoding)
    for row in range(len(NOTES)):
        one = {n: {k: v[row : row + 1] for k, v in t.items()} for n, t in batch.inputs.items()}
        alone = model.generate(one, {n: p[row : row + 1] for n, p in batch.presence.items()}, decoding)
        assert alone == [together[row]]
    assert all(len(ids) <= 5 for ids in together)


def test_sampling_is_reproducible_with_a_seed() -> None:
    model, _, batch = _model()
    first = model.generate(batch.inputs, batch.presence, Decoding(8, temperature=1.5, seed=3))
    again = model.generate(batch.inputs, batch.presence, Decoding(8, temperature=1.5, seed=3))
    assert first == again


def test_an_absent_input_is_masked_out_of_the_prefix() -> None:
    model, _, batch = _model()
    absent = {"note": torch.zeros(4, dtype=torch.bool)}
    other = {"note": {k: torch.roll(v, 1, dims=0) for k, v in batch.inputs["note"].items()}}
    _, mask = model.prefix(batch.inputs, absent)
    assert not mask[:, :-1].any() and mask[:, -1].all()  # only <s> is attended to
    decoding = Decoding(max_new_tokens=4)
    assert model.generate(batch.inputs, absent, decoding) == model.generate(other, absent, decoding)

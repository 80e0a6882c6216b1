"""Rows with identical content in a tower column are not each other's negatives (ContrastiveTask)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from omnifuse.contrastive.losses import clip_loss, negatives_mask
from omnifuse.contrastive.model import ContrastiveOutput, content_fingerprint
from omnifuse.tasks.contrastive import ContrastiveTask


def test_fingerprint_equal_for_identical_rows_and_ignores_padding() -> None:
    ids = torch.tensor([[5, 9, 0], [5, 9, 0], [9, 5, 0]])  # rows 0 and 1 identical; row 2 reordered
    mask = (ids > 0).long()
    fp = content_fingerprint({"input_ids": ids, "attention_mask": mask})
    assert fp.dtype == torch.float32 and fp[0] == fp[1] and fp[0] != fp[2]
    assert float(fp.min()) >= 0 and float(fp.max()) < 2**24
    shorter = content_fingerprint({"input_ids": ids[:, :2], "attention_mask": mask[:, :2]})
    assert torch.equal(shorter, fp)  # the same text padded to another batch's length keeps its id
    pixels = torch.rand(3, 1, 4, 4)
    pixels[2] = pixels[0]
    fp_pixels = content_fingerprint({"pixels": pixels})
    assert fp_pixels[0] == fp_pixels[2] and fp_pixels[0] != fp_pixels[1]


def test_negatives_mask_with_several_keys_masks_any_shared_key() -> None:
    keys = torch.tensor([[-1, 7, 1], [-1, 7, 2], [-1, 8, 3], [-1, 9, 3]])  # (4, G=3): label, id_a, id_b
    assert negatives_mask(keys, keys, 4, 4).tolist() == [
        [False, True, False, False],  # shares column a's content with row 1
        [True, False, False, False],
        [False, False, False, True],  # shares column b's content with row 3
        [False, False, True, False],
    ]  # -1 (no label) matches nothing, and the diagonal (the positives) is never masked


def _packed(a: torch.Tensor, b: torch.Tensor, ids_a: list[float], ids_b: list[float]) -> torch.Tensor:
    scalars = torch.tensor([math.log(10.0), 0.0]).expand(len(a), 2)
    return torch.cat([a, b, scalars, torch.tensor([ids_a, ids_b]).T], dim=1)  # (B, 2D + 2 + 2)


def test_task_leaves_identical_texts_out_of_each_others_negatives() -> None:
    a = F.normalize(torch.tensor([[1.0, 0.2], [0.9, -0.3], [-0.5, 1.0]]), dim=-1)  # column "a"
    b = F.normalize(torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]), dim=-1)  # rows 0, 1: the same text
    logits = _packed(a, b, [11.0, 12.0, 13.0], [21.0, 21.0, 23.0])
    out = ContrastiveOutput.unpack(logits, ["a", "b"], 2)
    assert torch.equal(out.embeddings["b"], b)
    assert math.isclose(float(out.logit_scale), math.log(10.0), rel_tol=1e-6)
    assert out.content_ids is not None and out.content_ids["b"].tolist() == [21, 21, 23]
    assert torch.equal(out.pack(["a", "b"]), logits)  # pack and unpack are inverses
    assert ContrastiveOutput.unpack(logits[:, :6], ["a", "b"], 2).content_ids is None  # no content ids
    masked = ContrastiveTask(["a", "b"], embed_dim=2).loss(logits, torch.full((3,), -1))["loss"]
    plain = ContrastiveTask(["a", "b"], embed_dim=2, mask_duplicates=False).loss(logits, torch.full((3,), -1))
    by_hand = clip_loss(a, b, torch.tensor(math.log(10.0)),
                        torch.tensor([[-1, 11, 21], [-1, 12, 21], [-1, 13, 23]]))
    assert torch.allclose(masked, by_hand)
    assert float(masked) < float(plain["loss"])  # the identical text no longer counts as a wrong answer
    assert torch.allclose(plain["loss"], clip_loss(a, b, torch.tensor(math.log(10.0))))


def test_contrastive_model_packs_content_ids_after_the_scalars() -> None:
    from omnifuse.build import build_model, make_preprocessors, make_task_for
    from omnifuse.config.sections import Config

    cfg = Config.from_dict({
        "label": {"task": "contrastive"},
        "columns": {"x": {"type": "text", "encoder": {"name": "bow", "embed_dim": 4}},
                    "y": {"type": "text", "encoder": {"name": "bow", "embed_dim": 4}}},
        "contrastive": {"columns": ["x", "y"], "embed_dim": 3},
    })
    pre = make_preprocessors(cfg)
    for name in ("x", "y"):
        pre[name].fit(["red hat", "blue hat", "green hat"])
    model = build_model(cfg, pre, make_task_for(cfg)).eval()
    texts = {"x": ["red hat", "blue hat", "red hat"], "y": ["green hat", "green hat", "blue hat"]}  # 2 words
    inputs = {n: {k: torch.stack([pre[n](t)[k] for t in v]) for k in pre[n]("red hat")}
              for n, v in texts.items()}  # {column: {tensor: (3, T)}}
    out = model(inputs, {n: torch.ones(3, dtype=torch.bool) for n in texts})
    assert out.shape == (3, 2 * 3 + 2 + 2)
    typed = model.output(inputs)
    assert torch.equal(typed.pack(["x", "y"]), out)
    ids = ContrastiveOutput.unpack(out, ["x", "y"], 3).content_ids
    assert ids is not None and typed.content_ids is not None and torch.equal(ids["x"], typed.content_ids["x"])
    assert ids["x"][0] == ids["x"][2] != ids["x"][1] and ids["y"][0] == ids["y"][1] != ids["y"][2]

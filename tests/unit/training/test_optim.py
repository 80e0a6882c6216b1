"""Unit tests of AdamW parameter groups and the warmup + cosine schedule."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from omnifuse.training.optim import make_optimizer, param_groups, warmup_cosine


class Tiny(nn.Module):
    """Looks like a MultimodalModel: encoders (a ModuleDict), fusion, head."""

    def __init__(self) -> None:
        super().__init__()
        self.encoders = nn.ModuleDict(
            {
                "text": nn.Sequential(nn.Embedding(10, 4), nn.LayerNorm(4)),
                "image": nn.Linear(3, 4),
            }
        )
        self.fusion = nn.Linear(8, 5)
        self.head = nn.Sequential(nn.BatchNorm1d(5), nn.Linear(5, 2, bias=False))
        self.scale = nn.Parameter(torch.ones(()))  # a 0-d parameter outside any encoder


def _by_name(groups: list[dict[str, object]]) -> dict[str, dict[str, object]]:
    return {str(g["name"]): g for g in groups}


def _ids(group: dict[str, object]) -> set[int]:
    return {id(p) for p in group["params"]}  # type: ignore[attr-defined]


def test_groups_and_membership() -> None:
    model = Tiny()
    groups = _by_name(param_groups(model, lr=0.01, weight_decay=0.1, lr_mults={"text": 0.1}))
    assert set(groups) == {
        "encoder:image/decay",
        "encoder:image/no_decay",
        "encoder:text/decay",
        "encoder:text/no_decay",
        "fusion+head/decay",
        "fusion+head/no_decay",
    }
    text, image = model.encoders["text"], model.encoders["image"]
    assert isinstance(text, nn.Sequential) and isinstance(image, nn.Linear)
    assert _ids(groups["encoder:text/decay"]) == {id(text[0].weight)}  # the embedding matrix
    assert _ids(groups["encoder:text/no_decay"]) == {id(text[1].weight), id(text[1].bias)}  # LayerNorm
    assert _ids(groups["encoder:image/decay"]) == {id(image.weight)}
    assert _ids(groups["encoder:image/no_decay"]) == {id(image.bias)}
    assert _ids(groups["fusion+head/decay"]) == {id(model.fusion.weight), id(model.head[1].weight)}
    assert _ids(groups["fusion+head/no_decay"]) == {
        id(model.fusion.bias),
        id(model.head[0].weight),
        id(model.head[0].bias),
        id(model.scale),
    }


def test_every_parameter_exactly_once() -> None:
    model = Tiny()
    groups = param_groups(model, 0.01, 0.1, {})
    seen = [id(p) for g in groups for p in g["params"]]  # type: ignore[attr-defined]
    assert len(seen) == len(set(seen)) == len(list(model.parameters()))


def test_lr_multipliers_and_weight_decay_per_group() -> None:
    groups = _by_name(param_groups(Tiny(), lr=0.01, weight_decay=0.1, lr_mults={"text": 0.1, "image": 0.0}))
    assert groups["encoder:text/decay"]["lr"] == pytest.approx(0.001)
    assert groups["encoder:text/no_decay"]["lr"] == pytest.approx(0.001)
    assert groups["encoder:image/decay"]["lr"] == 0.0
    assert groups["fusion+head/decay"]["lr"] == 0.01
    for name, group in groups.items():
        assert group["weight_decay"] == (0.1 if name.endswith("/decay") else 0.0)


def test_norm_named_matrix_gets_no_decay() -> None:
    class Named(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.group_norm_proj = nn.Linear(2, 2, bias=False)
            self.plain = nn.Linear(2, 2, bias=False)

    groups = _by_name(param_groups(Named(), 1.0, 0.5, {}))
    assert len(groups["fusion+head/no_decay"]["params"]) == 1  # type: ignore[arg-type]
    assert len(groups["fusion+head/decay"]["params"]) == 1  # type: ignore[arg-type]


def test_plain_module_and_empty_groups_dropped() -> None:
    groups = param_groups(nn.Linear(2, 2, bias=False), 0.1, 0.01, {"x": 3.0})
    assert [g["name"] for g in groups] == ["fusion+head/decay"]


def test_make_optimizer_keeps_group_settings() -> None:
    opt = make_optimizer(param_groups(Tiny(), 0.01, 0.1, {"text": 0.5}))
    assert isinstance(opt, torch.optim.AdamW)
    lrs = {g["name"]: g["lr"] for g in opt.param_groups}
    assert lrs["encoder:text/decay"] == pytest.approx(0.005)
    assert {g["weight_decay"] for g in opt.param_groups} == {0.0, 0.1}


def _lrs(total: int, ratio: float, base: float = 1.0) -> list[float]:
    param = nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=base)
    sched = warmup_cosine(opt, total, ratio)
    values = []
    for _ in range(total + 1):
        values.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return values


def test_warmup_then_cosine_known_steps() -> None:
    lrs = _lrs(total=100, ratio=0.1, base=2.0)  # warmup = 10 steps
    assert lrs[0] == pytest.approx(2.0 * 1 / 11)  # step 0: first warmup step, not zero
    assert lrs[5] == pytest.approx(2.0 * 6 / 11)
    assert lrs[9] == pytest.approx(2.0 * 10 / 11)  # last warmup step
    assert lrs[10] == pytest.approx(2.0)  # end of warmup: the peak
    assert lrs[55] == pytest.approx(1.0)  # middle of the cosine: half
    assert lrs[32] == pytest.approx(2.0 * 0.5 * (1 + math.cos(math.pi * 22 / 90)))
    assert lrs[100] == pytest.approx(0.0, abs=1e-12)  # end
    assert all(a <= b for a, b in zip(lrs[:10], lrs[1:11], strict=True))  # rising warmup
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:], strict=False))  # falling cosine


def test_no_warmup_starts_at_peak() -> None:
    lrs = _lrs(total=4, ratio=0.0)
    assert lrs == pytest.approx(
        [1.0, 0.5 * (1 + math.cos(math.pi / 4)), 0.5, 0.5 * (1 + math.cos(3 * math.pi / 4)), 0.0]
    )


def test_steps_past_the_end_stay_at_zero() -> None:
    param = nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=1.0)
    sched = warmup_cosine(opt, 10, 0.2)
    for _ in range(15):
        opt.step()
        sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)


def test_schedule_scales_each_group_by_its_own_lr() -> None:
    opt = make_optimizer(param_groups(Tiny(), 0.01, 0.1, {"text": 0.1}))
    sched = warmup_cosine(opt, 20, 0.5)  # warmup 10
    for _ in range(10):
        opt.step()
        sched.step()
    lrs = {g["name"]: g["lr"] for g in opt.param_groups}
    assert lrs["encoder:text/decay"] == pytest.approx(0.001)
    assert lrs["fusion+head/decay"] == pytest.approx(0.01)


def test_zero_total_steps_does_not_divide_by_zero() -> None:
    assert _lrs(total=0, ratio=0.1) == [1.0]


def test_the_head_gets_its_own_groups_only_with_its_own_multiplier() -> None:
    model = Tiny()
    plain = _by_name(param_groups(model, 0.01, 0.1, {}))
    assert not any(name.startswith("head/") for name in plain)  # at 1.0 the head is part of the rest
    groups = _by_name(param_groups(model, 0.01, 0.1, {}, head_lr_mult=0.1))
    assert groups["head/decay"]["lr"] == pytest.approx(0.001)
    head = {id(p) for p in model.head.parameters()}
    assert _ids(groups["head/decay"]) | _ids(groups["head/no_decay"]) == head
    rest = _ids(groups["fusion+head/decay"]) | _ids(groups["fusion+head/no_decay"])
    assert not rest & head  # each parameter in one group


def test_contiguous_parameters_step_fused_and_channels_last_ones_per_tensor() -> None:
    conv = nn.Conv2d(4, 8, 3).to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    model = nn.Sequential(conv, nn.Flatten(), nn.LazyLinear(2))
    model(torch.randn(1, 4, 5, 5))
    groups = [{"params": list(model.parameters()), "lr": 0.01, "weight_decay": 0.0, "name": "all"}]
    opt = make_optimizer(groups)
    fused = {id(p) for g in opt.param_groups if g["fused"] for p in g["params"]}
    assert id(conv.weight) not in fused and id(conv.bias) in fused and len(opt.param_groups) == 2
    assert [g["name"] for g in opt.param_groups] == ["all", "all/strided"]
    assert all(not g["fused"] for g in make_optimizer(groups, fused=False).param_groups)


def test_a_fused_step_equals_the_per_tensor_step_also_after_reloading_contiguous_state() -> None:
    def run(fused: bool) -> list[torch.Tensor]:
        torch.manual_seed(0)
        model = nn.Sequential(nn.Conv2d(4, 8, 3), nn.Flatten(), nn.Linear(72, 2))
        model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        opt = make_optimizer(param_groups(model, 0.01, 0.1, {}), fused=fused)
        for step in range(3):
            model(torch.randn(2, 4, 5, 5, generator=torch.Generator().manual_seed(step))).sum().backward()
            opt.step()
            opt.zero_grad()
            if step == 0:  # a resumed run: the state comes back from the checkpoint as contiguous tensors
                state = opt.state_dict()
                for slots in state["state"].values():
                    for key, value in slots.items():
                        slots[key] = value.contiguous()
                opt.load_state_dict(state)
        return [p.detach().clone() for p in model.parameters()]

    for fused, plain in zip(run(True), run(False), strict=True):
        torch.testing.assert_close(fused, plain, rtol=1e-5, atol=1e-6)

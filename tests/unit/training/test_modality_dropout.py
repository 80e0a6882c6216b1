"""Unit tests of modality dropout."""

from __future__ import annotations

import torch
from torch import Tensor

from omnifuse.training.modality_dropout import drop_modalities


def _presence(rows: int = 200) -> dict[str, Tensor]:
    gen = torch.Generator().manual_seed(1)
    presence = {n: torch.rand(rows, generator=gen) > 0.3 for n in ("text", "image", "audio")}
    presence["text"][:5] = False  # a few rows with nothing present at all
    presence["image"][:5] = False
    presence["audio"][:5] = False
    return presence


def _stack(presence: dict[str, Tensor]) -> Tensor:
    return torch.stack([presence[n] for n in sorted(presence)], dim=1)  # (B, M)


def test_p_zero_is_identity() -> None:
    presence = _presence()
    assert drop_modalities(presence, 0.0) is presence


def test_single_modality_is_never_dropped() -> None:
    presence = {"text": torch.tensor([True, False, True])}
    assert drop_modalities(presence, 0.9) is presence


def test_high_p_keeps_at_least_one_modality_per_row() -> None:
    presence = _presence()
    out = drop_modalities(presence, 0.999, torch.Generator().manual_seed(0))
    before, after = _stack(presence), _stack(out)
    had_some = before.any(dim=1)
    assert after[had_some].any(dim=1).all()
    assert not after[~had_some].any()  # rows with nothing stay with nothing


def test_rows_never_gain_a_modality() -> None:
    presence = _presence()
    for seed in range(5):
        out = drop_modalities(presence, 0.5, torch.Generator().manual_seed(seed))
        assert not (_stack(out) & ~_stack(presence)).any()


def test_some_modalities_are_dropped_at_moderate_p() -> None:
    presence = _presence(1000)
    out = drop_modalities(presence, 0.3, torch.Generator().manual_seed(0))
    before, after = _stack(presence).sum().item(), _stack(out).sum().item()
    assert 0.6 * before < after < 0.8 * before  # about 30% dropped (a little less: rows keep one)


def test_keys_shapes_and_dtype() -> None:
    presence = _presence()
    out = drop_modalities(presence, 0.5, torch.Generator().manual_seed(0))
    assert set(out) == set(presence)
    for name in presence:
        assert out[name].shape == presence[name].shape and out[name].dtype == torch.bool


def test_deterministic_with_seeded_generator() -> None:
    presence = _presence()
    a = drop_modalities(presence, 0.5, torch.Generator().manual_seed(42))
    b = drop_modalities(presence, 0.5, torch.Generator().manual_seed(42))
    c = drop_modalities(presence, 0.5, torch.Generator().manual_seed(43))
    assert all(torch.equal(a[n], b[n]) for n in presence)
    assert any(not torch.equal(a[n], c[n]) for n in presence)


def test_hand_checked_small_case() -> None:
    presence = {"a": torch.tensor([True, True, False]), "b": torch.tensor([True, False, False])}
    out = drop_modalities(presence, 0.99, torch.Generator().manual_seed(0))
    # with p ~ 1 every row would lose everything, so each keeps its original presence
    assert torch.equal(out["a"], presence["a"]) and torch.equal(out["b"], presence["b"])


def test_input_is_not_modified() -> None:
    presence = _presence()
    copy = {n: t.clone() for n, t in presence.items()}
    drop_modalities(presence, 0.5, torch.Generator().manual_seed(0))
    assert all(torch.equal(presence[n], copy[n]) for n in presence)


def test_kept_inputs_are_never_hidden_and_the_others_still_are() -> None:
    presence = {n: torch.ones(200, dtype=torch.bool) for n in ("image", "audio", "question")}
    out = drop_modalities(presence, 0.5, torch.Generator().manual_seed(0), keep=("question",))
    assert out["question"].all()
    assert not out["image"].all() and not out["audio"].all()
    assert (out["image"] | out["audio"]).all()  # one of the droppable ones stays on every row

"""The reliability gate's fallback: a flagged value is fused as if missing, a row keeps its last input."""

from __future__ import annotations

import torch

from omnifuse.encoders.base import EncoderOutput
from omnifuse.ood.drift import flag_rates
from omnifuse.ood.gate import ReliabilityGate, gated_presence
from omnifuse.ood.rows import row_flags, row_note


def test_flagged_values_become_missing_and_a_row_keeps_its_least_unusual_input() -> None:
    ratios = {"audio": torch.tensor([3.0, 0.5, 4.0, 2.0]), "image": torch.tensor([0.2, 0.9, 2.0, 5.0])}
    present = {"audio": torch.tensor([True, True, True, True]),
               "image": torch.tensor([True, True, True, False])}
    out = gated_presence(ratios, present)
    assert out["audio"].tolist() == [False, True, False, True]  # row 3: its only input, kept
    assert out["image"].tolist() == [True, True, True, False]  # row 2: both flagged, image less so


def test_an_unfitted_gate_changes_nothing() -> None:
    gate = ReliabilityGate({"audio": 4, "image": 4}, groups=2, drop=True)
    presence = {"audio": torch.tensor([True, False]), "image": torch.tensor([True, True])}
    encoded = {n: EncoderOutput(torch.full((2, 4), 100.0), None, None) for n in presence}
    out = gate(encoded, presence)
    assert gate.fitted == [] and {n: v.tolist() for n, v in out.items()} == {
        n: v.tolist() for n, v in presence.items()}


def test_a_fitted_gate_drops_what_its_statistics_flag() -> None:
    gate = ReliabilityGate({"audio": 2, "image": 2}, groups=1, drop=True)
    for stats in gate.stats.values():
        stats.fitted.fill_(True)
        stats.threshold.fill_(4.0)  # identity whitener, centre 0: flagged beyond a distance of 2
    encoded = {"audio": EncoderOutput(torch.tensor([[3.0, 0.0], [0.5, 0.0]]), None, None),
               "image": EncoderOutput(torch.tensor([[0.1, 0.1], [0.1, 0.0]]), None, None)}
    presence = {"audio": torch.tensor([True, True]), "image": torch.tensor([True, True])}
    assert gate(encoded, presence)["audio"].tolist() == [False, True]
    flags = row_flags(gate.ratios(encoded, presence), presence, drop=True)
    assert flags[0]["audio"] == {"score": 2.25, "flagged": True, "weight": 0.0}
    assert "audio looks unlike the training audio" in row_note(flags[0]) and row_note(flags[1]) == ""


def test_flag_rates_call_a_column_drifted_only_when_far_above_the_expected_share() -> None:
    gate = ReliabilityGate({"audio": 2, "image": 2}, groups=1, drop=False)
    for stats in gate.stats.values():
        stats.exceedance.copy_(torch.tensor([2.0, 149.0]))  # the 149th of 150 validation distances
    present = {n: torch.ones(300, dtype=torch.bool) for n in ("audio", "image")}
    ratios = {"audio": torch.where(torch.arange(300) < 36, 2.0, 0.5),  # 12% flagged
              "image": torch.where(torch.arange(300) < 6, 2.0, 0.5)}  # 2%: within the threshold's noise
    rates = flag_rates(ratios, present, gate)
    assert rates["audio"]["drifted"] and rates["audio"]["flag_rate"] == 0.12
    assert not rates["image"]["drifted"] and rates["image"]["drift_p"] > 0.1
    assert abs(rates["image"]["expected_rate"] - 2 / 151) < 1e-6


def test_a_column_the_model_is_unsure_of_drifts_even_when_no_value_is_flagged() -> None:
    gate = ReliabilityGate({"audio": 2}, groups=10, drop=False)
    gate.of("audio").exceedance.copy_(torch.tensor([2.0, 149.0]))
    gate.of("audio").confidence.copy_(torch.tensor([0.72, 0.04, 150.0]))  # validation: mean 0.72
    present = {"audio": torch.ones(300, dtype=torch.bool)}
    ratios = {"audio": torch.full((300,), 0.5)}  # nothing flagged one by one
    generator = torch.Generator().manual_seed(0)
    unsure = {"audio": (0.5 + 0.2 * torch.randn(300, generator=generator)).clamp(0.1, 1.0)}
    sure = {"audio": (0.75 + 0.2 * torch.randn(300, generator=generator)).clamp(0.1, 1.0)}
    drifted = flag_rates(ratios, present, gate, unsure)["audio"]
    assert drifted["flagged"] == 0 and drifted["drifted"] and drifted["confidence_p"] < 1e-6
    calm = flag_rates(ratios, present, gate, sure)["audio"]
    assert not calm["drifted"] and calm["confidence_p"] > 0.5
    assert "confidence_p" not in flag_rates(ratios, present, gate)["audio"]  # no confidences given

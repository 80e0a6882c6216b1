"""The reliability gate: per-input OOD scores between the encoders and the fusion, and the fallback.

Each input's pooled embedding gets its Mahalanobis distance to the nearest training class (``mahalanobis``),
divided by a threshold fitted on the validation rows: a ratio above 1 flags the value as unlike the training
data. With ``drop``, a flagged input is handed to the fusion as missing (its presence mask False), so every
fusion that takes a presence mask falls back on the other inputs exactly as for a missing value; a row never
loses its last input (the least unusual one stays). An input whose statistics were not fitted is never
flagged, so an unfitted gate (a folder saved before it existed) changes nothing.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from omnifuse.encoders.base import EncoderOutput
from omnifuse.ood.mahalanobis import nearest_distance

GATE_PREFIX = "gate."  # its keys in the model's state: a folder saved before the gate existed has none


class InputStatistics(nn.Module):
    """One input's whitened class centres (K, D), whitener (D, D), threshold (), fitted flag () and
    ``exceedance`` (2,): the Beta(a, b) law of the share of in-distribution values above the threshold
    (it is the r-th smallest of n validation distances: a = n - r + 1, b = r), for the drift test, and
    ``confidence`` (3,): mean, variance and count of the validation rows' top-class probability of the
    model given this input alone (a classifier's second drift test; count 0: none)."""

    centres: Tensor
    whitener: Tensor
    threshold: Tensor
    fitted: Tensor
    exceedance: Tensor
    confidence: Tensor

    def __init__(self, dim: int, groups: int) -> None:
        super().__init__()
        self.register_buffer("centres", torch.zeros(groups, dim))
        self.register_buffer("whitener", torch.eye(dim))
        self.register_buffer("threshold", torch.ones(()))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))
        self.register_buffer("exceedance", torch.ones(2))
        self.register_buffer("confidence", torch.zeros(3))

    def ratio(self, pooled: Tensor) -> Tensor:
        """(B,) distance / threshold of (B, D) pooled embeddings; above 1: flagged."""
        return nearest_distance(pooled, self.centres, self.whitener) / self.threshold


class ReliabilityGate(nn.Module):
    """Scores each input's values and, with ``drop``, fuses the flagged ones as missing.

    Args:
        input_dims: {input name: pooled width}.
        groups: classes of a classifier (statistics per class), 1 for other tasks.
        drop: fuse a flagged input as missing (else flags are only reported).
    """

    def __init__(self, input_dims: dict[str, int], groups: int, drop: bool) -> None:
        super().__init__()
        self.stats = nn.ModuleDict({n: InputStatistics(d, groups) for n, d in sorted(input_dims.items())})
        self.drop = drop

    def of(self, name: str) -> InputStatistics:
        """Input ``name``'s statistics."""
        return self.stats[name]  # type: ignore[return-value]

    @property
    def fitted(self) -> list[str]:
        """The inputs whose statistics are fitted."""
        return [name for name in self.stats if bool(self.of(name).fitted)]

    def ratios(self, encoded: dict[str, EncoderOutput], presence: dict[str, Tensor]) -> dict[str, Tensor]:
        """{fitted input: (B,) score ratio}, 0 where the input is missing."""
        out = {}
        for name in self.fitted:
            ratio = self.of(name).ratio(encoded[name].pooled)  # (B,)
            out[name] = torch.where(presence[name], ratio, torch.zeros_like(ratio))
        return out

    def forward(self, encoded: dict[str, EncoderOutput], presence: dict[str, Tensor]) -> dict[str, Tensor]:
        """The presence masks the fusion sees: with ``drop``, flagged values count as missing.

        No Python branch reads a buffer here (an unfitted input's ratio is masked to 0 instead), so the
        ONNX exporter can trace a fitted gate."""
        if not self.drop:
            return presence
        ratios = {}
        for name in self.stats:
            stats = self.of(name)
            ratio = stats.ratio(encoded[name].pooled)  # (B,)
            ratios[name] = torch.where(presence[name] & stats.fitted, ratio, torch.zeros_like(ratio))
        return self.masks_for(ratios, presence)

    def masks_for(self, ratios: dict[str, Tensor], presence: dict[str, Tensor]) -> dict[str, Tensor]:
        """The presence masks for already computed ``ratios`` ({input: (B,)}; an input without one, e.g.
        unfitted, counts as unflagged): gated with ``drop``, as given without."""
        if not self.drop or not ratios:
            return presence
        some = next(iter(ratios.values()))
        return gated_presence({n: ratios.get(n, torch.zeros_like(some)) for n in presence}, presence)


def gated_presence(ratios: dict[str, Tensor], presence: dict[str, Tensor]) -> dict[str, Tensor]:
    """``presence`` with each flagged value (ratio > 1) set missing, except a row's least unusual present
    input when all its present inputs are flagged."""
    names = sorted(ratios)
    stacked = torch.stack([ratios[n] for n in names], dim=1)  # (B, M)
    present = torch.stack([presence[n] for n in names], dim=1)  # (B, M)
    keep = present & (stacked <= 1)  # (B, M)
    # every present input flagged (and some value present): keep the one with the lowest ratio
    lowest = torch.where(present, stacked, torch.full_like(stacked, float("inf"))).argmin(dim=1)  # (B,)
    rescue = (present.any(dim=1) & ~keep.any(dim=1)).unsqueeze(1)  # (B, 1)
    chosen = nn.functional.one_hot(lowest, len(names)).bool()  # (B, M)
    keep = keep | (rescue & chosen)
    out = dict(presence)
    out.update({n: keep[:, i] for i, n in enumerate(names)})
    return out

"""``LinearReadout``: a logistic regression on the encoders' ``linear_features``, blended with the head.

A gradient-trained head on a thousand clips fits the training voices; a logistic regression with strong L2
on the same clips' MFCC statistics, its strength chosen on the validation rows, generalises to an unseen
voice far better (README, "Defaults and why": 0.853 against 0.773 on a female test voice). It reads each
input's ``linear_features`` (``mfcc_stats``' statistics, ``tfidf``'s TF-IDF vector) or, for an encoder
frozen for the whole run (``freeze_epochs: -1``), its pooled embedding: what the classical baselines fit.
It is fitted after training (``readout.fit``) and, in eval mode, the model's log-probabilities become

    (1 - w) * log_softmax(head / T_head) + w * log_softmax(readout / T_readout)

per row, with each part's temperature and the weight ``w`` fitted on the validation rows; a row none of the
read-out's inputs is present in keeps the head alone (w = 0). Unfitted, it returns the head's logits.
No Python branch reads a buffer, so a fitted read-out traces into ONNX.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from omnifuse.layers.standardize import FeatureStandardizer

READOUT_PREFIX = "readout."  # its keys in the model's state: a folder saved before it existed has none


@dataclass(frozen=True)
class ReadoutInput:
    """What the read-out reads of one input: ``dim`` features from the encoder's ``linear_features``
    (``source: linear``) or its pooled output (``pooled``: a frozen encoder's embedding); ``sparse``:
    non-negative sparse rows (TF-IDF), scaled as a block but not centred per feature."""

    dim: int
    source: Literal["linear", "pooled"] = "linear"
    sparse: bool = False


class LinearReadout(nn.Module):
    """Logistic regression over the standardised features of ``inputs``.

    Each input's features are standardised per feature with its training rows' statistics (not a sparse
    input's), then scaled as a block to unit mean energy (squared row norm) over the training rows, as the
    classical baselines scale theirs, so that one L2 strength treats blocks of 480 and 20,000 features alike.

    Args:
        inputs: {input name: what it reads of that input}.
        classes: number of classes C.

    Buffers: ``weight`` (S, C) and ``bias`` (C,) over the inputs' features concatenated in name order,
    ``blocks`` (M,) each input's block scale, ``temperatures`` (2,) of the head and of the read-out,
    ``blend`` () the weight w, ``fitted`` ().
    """

    weight: Tensor
    bias: Tensor
    blocks: Tensor
    temperatures: Tensor
    blend: Tensor
    fitted: Tensor

    def __init__(self, inputs: dict[str, ReadoutInput], classes: int) -> None:
        super().__init__()
        self.inputs = dict(sorted(inputs.items()))
        # each dense input's features standardised with its training rows' statistics
        self.scales = nn.ModuleDict({n: FeatureStandardizer(i.dim) for n, i in self.inputs.items()
                                     if not i.sparse})
        self.register_buffer("weight", torch.zeros(sum(i.dim for i in inputs.values()), classes))
        self.register_buffer("bias", torch.zeros(classes))
        self.register_buffer("blocks", torch.ones(len(inputs)))
        self.register_buffer("temperatures", torch.ones(2))
        self.register_buffer("blend", torch.zeros(()))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    @property
    def names(self) -> list[str]:
        """The inputs it reads, in the order of ``weight``'s rows."""
        return list(self.inputs)

    def centred(self, name: str, values: Tensor) -> Tensor:
        """(B, S_name) one input's features standardised per feature (a sparse input's as they are)."""
        return values.float() if self.inputs[name].sparse else self.scales[name](values.float())

    def standardised(self, features: dict[str, Tensor], presence: dict[str, Tensor]) -> Tensor:
        """(B, S) the features the regression reads: centred, block-scaled, 0 where an input is missing
        (a dense input's training mean)."""
        parts = []
        for i, name in enumerate(self.names):
            z = self.centred(name, features[name]) * self.blocks[i]  # (B, S_name)
            parts.append(z * presence[name].unsqueeze(1).to(z.dtype))
        return torch.cat(parts, dim=1)  # (B, S)

    def logits(self, features: dict[str, Tensor], presence: dict[str, Tensor]) -> Tensor:
        """(B, C) logits of the logistic regression."""
        return self.standardised(features, presence) @ self.weight + self.bias

    def forward(self, head: Tensor, features: dict[str, Tensor], presence: dict[str, Tensor]) -> Tensor:
        """The blended (B, C) log-probabilities (the head's (B, C) logits while unfitted); see the module."""
        some = torch.stack([presence[n] for n in self.names], dim=1).any(dim=1, keepdim=True)  # (B, 1)
        w = self.blend * some.to(head.dtype)  # (B, 1)
        own = torch.log_softmax(head / self.temperatures[0], dim=1)  # (B, C)
        linear = self.logits(features, presence).to(head.dtype)  # (B, C)
        linear = torch.log_softmax(linear / self.temperatures[1], dim=1)
        return torch.where(self.fitted, (1 - w) * own + w * linear, head)


def readout_summary(model: nn.Module) -> dict[str, object] | None:
    """What a model's fitted read-out does, for metrics.json (None: it has none, or it is unfitted)."""
    readout = getattr(model, "readout", None)
    if not isinstance(readout, LinearReadout) or not bool(readout.fitted):
        return None
    t_head, t_linear = (float(t) for t in readout.temperatures)
    return {"inputs": readout.names, "weight": round(float(readout.blend), 4),
            "temperature_head": round(t_head, 4), "temperature_readout": round(t_linear, 4)}


def readout_section(summary: dict[str, object]) -> str:
    """The report's paragraph on the read-out."""
    inputs = ", ".join(f"`{n}`" for n in summary["inputs"])  # type: ignore[attr-defined]
    return (f"A logistic regression on the linear features of {inputs}, fitted after training, is blended "
            f"with the trained head with weight {summary['weight']:.2f} (chosen on the validation rows; "
            "`readout.enabled: false` turns it off).")

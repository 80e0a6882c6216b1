"""ContrastiveModel: one tower per column, each projected to a shared, L2-normalised embedding space."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from omnifuse.encoders.base import Encoder, EncoderOutput
from omnifuse.fusion.base import Fusion
from omnifuse.model import MultimodalModel

PACKED_SCALARS = 2  # log(1 / temperature) and the SigLIP bias, appended to every output row
FINGERPRINT_BITS = 24  # content ids are exact in float32 (and survive autocast: cat promotes to float32)
_MIX = 1_000_003  # combines the fingerprints of a column's several input tensors


def _position_weights(n: int, device: torch.device) -> Tensor:
    """(n,) fixed pseudo-random odd int64 weights; position t gets the same weight for any n."""
    t = torch.arange(1, n + 1, dtype=torch.int64, device=device)
    return (t * 2_654_435_761) % 2_147_483_647 * 2 + 1


def content_fingerprint(inputs: dict[str, Tensor]) -> Tensor:
    """(B,) float32 ids in [0, 2**24): equal for rows whose preprocessed input tensors are identical.

    Exact integer hashing of the values (floats by their bits), so identical rows always agree; zero
    padding adds nothing, so a text padded to another batch's length keeps its id. Different rows
    collide with probability 2**-24 (a collision only masks one negative).
    """
    rows = next(iter(inputs.values())).shape[0]
    device = next(iter(inputs.values())).device
    total = torch.zeros(rows, dtype=torch.int64, device=device)
    for key in sorted(inputs):
        value = inputs[key].detach()
        flat = value.reshape(rows, -1)  # (B, N)
        if flat.is_floating_point():
            flat = flat.float().contiguous().view(torch.int32)  # (B, N) the float32 bits
        flat = flat.to(torch.int64)
        total = total * _MIX + (flat * _position_weights(flat.shape[1], device)).sum(dim=1)  # wraps mod 2**64
    return torch.remainder(total, 2**FINGERPRINT_BITS).float()


@dataclass
class ContrastiveOutput:
    """What a ContrastiveModel computes for a batch of rows.

    The generic training loop carries one tensor per batch (it concatenates them across batches and
    gathers them across ranks), so the model returns ``pack()`` of this and the task reads it back with
    ``unpack``: the layout is known here only. Packed: ``(B, K * D + 2 [+ K])`` = the K columns'
    embeddings in sorted column order, ``logit_scale`` and ``bias`` repeated on every row, then (when
    present) each column's content id.
    """

    embeddings: dict[str, Tensor]  # {column: (B, D)} unit vectors
    logit_scale: Tensor  # () log of the inverse temperature
    bias: Tensor  # () the SigLIP logit bias (unused by CLIP)
    content_ids: dict[str, Tensor] | None = None  # {column: (B,) long} equal for identical inputs

    def pack(self, columns: list[str]) -> Tensor:
        """The one-tensor form, (B, K * D + 2 [+ K])."""
        first = self.embeddings[columns[0]]
        scalars = torch.stack([self.logit_scale, self.bias]).to(first.dtype)  # (2,)
        parts = [*(self.embeddings[c] for c in columns), scalars.expand(first.shape[0], PACKED_SCALARS)]
        if self.content_ids is not None:  # float32: exact below 2**24, and cat promotes under autocast
            parts.append(torch.stack([self.content_ids[c] for c in columns], dim=1).float().to(first.device))
        return torch.cat(parts, dim=1)

    @classmethod
    def unpack(cls, packed: Tensor, columns: list[str], embed_dim: int) -> ContrastiveOutput:
        """The typed form of ``pack``'s output (the embeddings are views of ``packed``)."""
        width = len(columns) * embed_dim + PACKED_SCALARS
        assert packed.shape[-1] in (width, width + len(columns)), (
            f"packed outputs of width {packed.shape[-1]}, expected {width} or {width + len(columns)}"
        )
        embeddings = {c: packed[:, i * embed_dim : (i + 1) * embed_dim] for i, c in enumerate(columns)}
        ids = None if packed.shape[-1] == width else {
            c: packed[:, width + i].detach().long() for i, c in enumerate(columns)
        }
        return cls(embeddings, packed[0, width - 2], packed[0, width - 1], ids)


class ProjectionFusion(Fusion):
    """Projects each tower's pooled vector to ``embed_dim`` (linear, no bias, as CLIP) and L2-normalises it.

    ``output`` gives the typed ContrastiveOutput (no content ids); ``forward`` its packed form.

    Args:
        input_dims: {column: its tower's output_dim}.
        embed_dim: the shared embedding size.
        logit_scale: initial log of the inverse temperature.
        bias: initial logit bias (SigLIP; unused by CLIP).
        learn_scale: learn ``logit_scale``; learn_bias: learn ``bias``.
    """

    def __init__(
        self, input_dims: dict[str, int], embed_dim: int, logit_scale: float, bias: float,
        learn_scale: bool, learn_bias: bool,
    ) -> None:
        super().__init__()
        self.columns = sorted(input_dims)
        self.embed_dim = embed_dim
        self.projections = nn.ModuleDict(
            {name: nn.Linear(input_dims[name], embed_dim, bias=False) for name in self.columns}
        )
        self.logit_scale = nn.Parameter(torch.tensor(float(logit_scale)), requires_grad=learn_scale)
        self.bias = nn.Parameter(torch.tensor(float(bias)), requires_grad=learn_bias)
        self.output_dim = len(self.columns) * embed_dim + PACKED_SCALARS

    def project(self, name: str, pooled: Tensor) -> Tensor:
        """(B, F) pooled tower output -> (B, embed_dim) unit vectors."""
        return F.normalize(self.projections[name](pooled), dim=-1)

    def output(self, features: dict[str, EncoderOutput]) -> ContrastiveOutput:
        """Every column's (B, embed_dim) embedding and the two scalars."""
        embeddings = {name: self.project(name, features[name].pooled) for name in self.columns}
        return ContrastiveOutput(embeddings, self.logit_scale, self.bias)

    def forward(self, features: dict[str, EncoderOutput], presence: dict[str, Tensor]) -> Tensor:
        return self.output(features).pack(self.columns)  # (B, K*D + 2)


class ContrastiveModel(MultimodalModel):
    """Towers (any registered encoders, one per column) + ``ProjectionFusion``; the head is the identity.

    It is a MultimodalModel whose fusion is the projection, so training, saving and loading treat it
    like any other model; ``embed_column`` runs a single tower.

    Args:
        towers: {column: Encoder}.
        projection: the projection heads and the learnable temperature / bias.
    """

    def __init__(self, towers: dict[str, Encoder], projection: ProjectionFusion) -> None:
        super().__init__(towers, projection, nn.Identity())

    def output(self, inputs: dict[str, dict[str, Tensor]]) -> ContrastiveOutput:
        """Every column's embedding, the two scalars and each column's content id (``content_fingerprint``),
        so the loss can tell identical inputs apart from true negatives."""
        out = self.projection.output(self.encode(inputs))
        out.content_ids = {name: content_fingerprint(inputs[name]).long() for name in self.columns}
        return out

    def forward(self, inputs: dict[str, dict[str, Tensor]], presence: dict[str, Tensor]) -> Tensor:
        """``output`` packed (B, K*D + 2 + K), the one tensor the generic training loop carries."""
        return self.output(inputs).pack(self.columns)

    @property
    def projection(self) -> ProjectionFusion:
        """The projection heads (the fusion slot)."""
        assert isinstance(self.fusion, ProjectionFusion)
        return self.fusion

    @property
    def columns(self) -> list[str]:
        """The towers' columns, sorted."""
        return list(self.projection.columns)

    def embed_column(self, name: str, inputs: dict[str, Tensor]) -> Tensor:
        """(B, embed_dim) L2-normalised embeddings of one column's preprocessed inputs."""
        return self.projection.project(name, self.encoders[name](inputs).pooled)

"""ContrastiveModel: one tower per column, each projected to a shared, L2-normalised embedding space."""

from __future__ import annotations

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


class ProjectionFusion(Fusion):
    """Projects each tower's pooled vector to ``embed_dim`` (linear, no bias, as CLIP) and L2-normalises it.

    Its output packs what the loss needs into one tensor, so that the generic training loop (which only
    concatenates outputs across batches and hands them to the task) works unchanged:
    ``(B, K * embed_dim + 2)`` = the K towers' embeddings in sorted column order, then ``logit_scale``
    and ``bias`` repeated on every row (``unpack`` splits it).

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

    def forward(self, features: dict[str, EncoderOutput], presence: dict[str, Tensor]) -> Tensor:
        embeddings = [self.project(name, features[name].pooled) for name in self.columns]  # K x (B, D)
        rows = embeddings[0].shape[0]
        scalars = torch.stack([self.logit_scale, self.bias]).to(embeddings[0].dtype)  # (2,)
        return torch.cat([*embeddings, scalars.expand(rows, PACKED_SCALARS)], dim=1)  # (B, K*D + 2)


def unpack(outputs: Tensor, columns: list[str], embed_dim: int) -> tuple[dict[str, Tensor], Tensor, Tensor]:
    """Splits packed outputs (N, K*D + 2 [+ K]) into {column: (N, D)}, logit_scale (), bias ()."""
    width = len(columns) * embed_dim + PACKED_SCALARS
    assert outputs.shape[-1] in (width, width + len(columns)), (
        f"packed outputs of width {outputs.shape[-1]}, expected {width} or {width + len(columns)}"
    )
    embeddings = {name: outputs[:, i * embed_dim : (i + 1) * embed_dim] for i, name in enumerate(columns)}
    return embeddings, outputs[0, width - 2], outputs[0, width - 1]


def unpack_fingerprints(outputs: Tensor, columns: list[str], embed_dim: int) -> dict[str, Tensor] | None:
    """{column: (N,) long content ids} of ``ContrastiveModel`` outputs, or None when they carry none."""
    width = len(columns) * embed_dim + PACKED_SCALARS
    if outputs.shape[-1] == width:
        return None
    return {name: outputs[:, width + i].detach().long() for i, name in enumerate(columns)}


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

    def forward(self, inputs: dict[str, dict[str, Tensor]], presence: dict[str, Tensor]) -> Tensor:
        """Packed outputs (B, K*D + 2 + K): embeddings, the two scalars, then each column's content id
        (``content_fingerprint``), so the loss can tell identical inputs apart from true negatives."""
        packed = super().forward(inputs, presence)  # (B, K*D + 2)
        ids = torch.stack([content_fingerprint(inputs[name]) for name in self.columns], dim=1)  # (B, K)
        return torch.cat([packed, ids.to(packed.device)], dim=1)

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

"""MultimodalModel: encoders -> fusion -> head. Composition only; built modules are injected."""

from __future__ import annotations

from torch import Tensor, nn

from omnifuse.encoders.base import Encoder, EncoderOutput
from omnifuse.fusion.base import Fusion


class MultimodalModel(nn.Module):
    """Encodes each input, fuses the features and maps them to logits.

    Args:
        encoders: {input name: Encoder}.
        fusion: fuses {input name: EncoderOutput} with the presence masks into (B, F).
        head: (B, F) -> (B, C).
    """

    def __init__(self, encoders: dict[str, Encoder], fusion: Fusion, head: nn.Module) -> None:
        super().__init__()
        self.encoders = nn.ModuleDict(dict(sorted(encoders.items())))
        self.fusion = fusion
        self.head = head

    def encode(self, inputs: dict[str, dict[str, Tensor]]) -> dict[str, EncoderOutput]:
        """Runs every encoder on its inputs."""
        return {name: encoder(inputs[name]) for name, encoder in self.encoders.items()}

    def embed(self, inputs: dict[str, dict[str, Tensor]], presence: dict[str, Tensor]) -> Tensor:
        """The fused representation (B, F). Inputs this model has no encoder for are ignored."""
        return self.fusion(self.encode(inputs), {name: presence[name] for name in self.encoders})

    def forward(self, inputs: dict[str, dict[str, Tensor]], presence: dict[str, Tensor]) -> Tensor:
        """Logits (B, C)."""
        return self.head(self.embed(inputs, presence))

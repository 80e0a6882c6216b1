"""MultimodalModel: encoders -> fusion -> head. Composition only; built modules are injected."""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor, nn

from omnifuse.encoders.base import Encoder, EncoderOutput
from omnifuse.fusion.base import Fusion
from omnifuse.layers.standardize import FeatureStandardizer
from omnifuse.ood.gate import ReliabilityGate
from omnifuse.readout.module import LinearReadout


class MultimodalModel(nn.Module):
    """Encodes each input, fuses the features and maps them to logits.

    Args:
        encoders: {input name: Encoder}.
        fusion: fuses {input name: EncoderOutput} with the presence masks into (B, F).
        head: (B, F) -> (B, C).
        aux_heads: {input name: (B, D_input) -> (B, C)}: auxiliary heads on single inputs' pooled vectors,
            trained beside the main head (``training.aux_loss``) so that every input's encoder learns to
            predict on its own, not only whichever input is easiest.
        standardizers: {input name: FeatureStandardizer}: applied to that input's pooled features and
            tokens (when they have the pooled width) before the fusion and the auxiliary heads (frozen
            encoders, ``training.standardize_frozen``).
        gate: scores each input's values against the training data after training (``ood``) and, in eval
            mode, hands the fusion a flagged value as missing (see ``ReliabilityGate``).
        readout: a logistic regression on the encoders' ``linear_features``, fitted after training
            (``readout``) and, in eval mode, blended with the head (see ``LinearReadout``).
    """

    def __init__(
        self, encoders: dict[str, Encoder], fusion: Fusion, head: nn.Module,
        aux_heads: Mapping[str, nn.Module] | None = None,
        standardizers: Mapping[str, FeatureStandardizer] | None = None,
        gate: ReliabilityGate | None = None,
        readout: LinearReadout | None = None,
    ) -> None:
        super().__init__()
        self.encoders = nn.ModuleDict(dict(sorted(encoders.items())))
        self.fusion = fusion
        self.head = head
        self.aux_heads = nn.ModuleDict(dict(sorted((aux_heads or {}).items())))
        self.aux_logits: dict[str, Tensor] = {}  # of the last training forward (see forward)
        self.standardizers = nn.ModuleDict(dict(sorted((standardizers or {}).items())))
        self.gate = gate
        self.readout = readout

    def encode_input(self, name: str, inputs: dict[str, Tensor]) -> EncoderOutput:
        """Input ``name``'s encoder output, standardised when the input has a standardizer."""
        output: EncoderOutput = self.encoders[name](inputs)
        if name not in self.standardizers:
            return output
        standardize = self.standardizers[name]
        tokens = output.tokens  # (B, T, D'): standardised too when D' is the pooled width D
        if tokens is not None and tokens.shape[-1] == output.pooled.shape[-1]:
            tokens = standardize(tokens)
        return output._replace(pooled=standardize(output.pooled), tokens=tokens)  # pooled (B, D)

    def encode(self, inputs: dict[str, dict[str, Tensor]]) -> dict[str, EncoderOutput]:
        """Runs every encoder on its inputs (see ``encode_input``)."""
        return {name: self.encode_input(name, inputs[name]) for name in self.encoders}

    def embed(self, inputs: dict[str, dict[str, Tensor]], presence: dict[str, Tensor]) -> Tensor:
        """The fused representation (B, F). Inputs this model has no encoder for are ignored; in eval
        mode the gate may mark a value unlike the training data as missing."""
        encoded = self.encode(inputs)
        return self.fusion(encoded, self.gated(encoded, presence))

    def gated(self, encoded: dict[str, EncoderOutput], presence: dict[str, Tensor]) -> dict[str, Tensor]:
        """The presence masks of this model's inputs as the fusion sees them (the gate's, in eval mode)."""
        presence = {name: presence[name] for name in self.encoders}
        if self.gate is None or self.training:
            return presence
        return self.gate(encoded, presence)  # type: ignore[no-any-return]

    def forward(self, inputs: dict[str, dict[str, Tensor]], presence: dict[str, Tensor]) -> Tensor:
        """Logits (B, C).

        In training mode with auxiliary heads, their logits {input: (B, C)} are left in ``aux_logits`` for
        the loss (computed in the same forward pass, so they train under DDP like every other part).
        """
        encoded = self.encode(inputs)
        if not (self.training and len(self.aux_heads) > 0):
            return self.decide(inputs, encoded, self.gated(encoded, presence))
        fused = self.fusion(encoded, {name: presence[name] for name in self.encoders})  # (B, F)
        self.aux_logits = {name: head(encoded[name].pooled) for name, head in self.aux_heads.items()}
        return self.head(fused)

    def decide(self, inputs: dict[str, dict[str, Tensor]], encoded: dict[str, EncoderOutput],
               presence: dict[str, Tensor]) -> Tensor:
        """Logits (B, C) of encoded ``inputs`` under these presence masks (as the fusion sees them): the
        head on the fusion and, in eval mode, the fitted read-out blended in (``LinearReadout``)."""
        logits = self.head(self.fusion(encoded, presence))  # (B, C)
        readout = self.readout
        if readout is None or self.training:
            return logits  # type: ignore[no-any-return]
        return readout(logits, self.readout_features(inputs, encoded), presence)  # type: ignore[no-any-return]

    def readout_features(self, inputs: dict[str, dict[str, Tensor]],
                         encoded: dict[str, EncoderOutput]) -> dict[str, Tensor]:
        """{input: (B, S) what the read-out reads of it}: the encoder's ``linear_features``, or the pooled
        output of an encoder the read-out reads that way (a frozen embedding, already computed)."""
        readout = self.readout
        assert readout is not None, "only for a model with a read-out"
        out = {}
        for name, spec in readout.inputs.items():
            encoder: Encoder = self.encoders[name]  # type: ignore[assignment]
            pooled = spec.source == "pooled"
            out[name] = encoded[name].pooled if pooled else encoder.linear_features(inputs[name])
        return out

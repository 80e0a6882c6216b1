"""mfcc_stats: the head options (one linear layer, dropout on the summary features) and their checks."""

from __future__ import annotations

import torch
from torch import nn

from omnifuse.config.parsing import from_dict
from omnifuse.encoders.mfcc import MFCCStats, MFCCStatsOptions


def _batch() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    mask = torch.ones(4, 12, dtype=torch.bool)
    mask[1, 7:] = False
    return {"mel": torch.randn(4, 12, 8), "mask": mask}  # (B, T, M), (B, T)


def test_hidden_dim_zero_is_one_linear_layer_on_the_summary() -> None:
    encoder = MFCCStats(n_mels=8, n_mfcc=4, segments=2, hidden_dim=0, output_dim=6, dropout=0.5)
    linears = [m for m in encoder.mlp.modules() if isinstance(m, nn.Linear)]
    assert len(linears) == 1 and linears[0].in_features == 2 * 4 * (2 + 2)  # (mean, std, 2 segments) x 2K
    assert not any(isinstance(m, (nn.GELU, nn.Dropout)) for m in encoder.mlp.modules())
    assert encoder.eval()(_batch()).pooled.shape == (4, 6)


def test_input_dropout_is_random_in_training_and_off_in_eval() -> None:
    encoder = MFCCStats(n_mels=8, n_mfcc=4, segments=2, hidden_dim=8, output_dim=6, dropout=0.0,
                        input_dropout=0.5)
    batch = _batch()
    encoder.train()
    first, second = encoder(batch).pooled, encoder(batch).pooled
    assert not torch.allclose(first, second)
    encoder.eval()
    assert torch.equal(encoder(batch).pooled, encoder(batch).pooled)
    plain = MFCCStats(n_mels=8, n_mfcc=4, segments=2, hidden_dim=8, output_dim=6, dropout=0.0)
    assert isinstance(plain.mlp[0], nn.Linear) and isinstance(encoder.mlp[0], nn.Dropout)  # 0.0: no layer


def test_options_are_range_checked() -> None:
    problems: list[str] = []
    options = from_dict(MFCCStatsOptions, {"hidden_dim": 0, "input_dropout": 0.3}, "columns.audio.encoder",
                        problems)
    assert problems == [] and (options.hidden_dim, options.input_dropout) == (0, 0.3)
    from_dict(MFCCStatsOptions, {"hidden_dim": -1, "input_dropout": 1.0}, "columns.audio.encoder", problems)
    assert len(problems) == 2
    assert any("columns.audio.encoder.hidden_dim" in p for p in problems)
    assert any("columns.audio.encoder.input_dropout" in p for p in problems)

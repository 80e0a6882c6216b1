"""The demo specs: the Fashion demo trains its pretrained encoders as init-config would write them."""

from __future__ import annotations

from omnifuse import catalog  # noqa: F401  (fills the registry)
from omnifuse.config import Config, TrainingConfig
from omnifuse.demo import FASHION, demo_config
from omnifuse.encoders.base import ENCODERS


def test_fashion_demo_uses_the_encoder_specs_schedule_and_the_default_training() -> None:
    config = demo_config(FASHION, sorted(FASHION.columns))
    for name in FASHION.columns:
        encoder = config.encoder_of(name)
        spec = ENCODERS.get(encoder.name)
        assert (encoder.freeze_epochs, encoder.lr_mult) == (spec.freeze_epochs, spec.lr_mult) == (-1, 0.05)
    assert config.training == TrainingConfig()
    assert config.fusion == Config(label=config.label, columns={}).fusion  # late, by a mean

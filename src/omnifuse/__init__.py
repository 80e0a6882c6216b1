"""omnifuse: multimodal deep learning from a table.

Public API: ``train``, ``evaluate``, ``load``, ``Predictor``, ``Config``, ``zero_shot``, ``load_index`` and
the registry listings.
"""

from __future__ import annotations

from omnifuse.api import evaluate
from omnifuse.catalog import list_encoders, list_fusions, list_heads
from omnifuse.config import Config
from omnifuse.contrastive.zero_shot import zero_shot
from omnifuse.loading import load
from omnifuse.predictor import Predictor
from omnifuse.preset_run import train
from omnifuse.retrieval import load_index
from omnifuse.tuning.run import tune
from omnifuse.version import __version__

__all__ = [
    "Config",
    "Predictor",
    "__version__",
    "evaluate",
    "list_encoders",
    "list_fusions",
    "list_heads",
    "load",
    "load_index",
    "train",
    "tune",
    "zero_shot",
]

"""omnifuse: multimodal deep learning from a table.

Public API: ``train``, ``evaluate``, ``load``, ``Predictor``, ``Config``, ``zero_shot``, ``load_index`` and
the registry listings.
"""

from __future__ import annotations

from omnifuse.api import evaluate
from omnifuse.catalog import list_encoders, list_fusions, list_heads
from omnifuse.config.sections import Config
from omnifuse.contrastive.zero_shot import zero_shot
from omnifuse.inference.loading import load
from omnifuse.inference.predictor import Predictor
from omnifuse.retrieval import load_index
from omnifuse.tuning.run import tune
from omnifuse.version import __version__
from omnifuse.workflows.preset_run import train

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

"""Training-time augmentation: per-column pipelines of registered transforms (see ``augment.base``).

Importing this package registers every transform (explicit imports, no magic). The config-facing part
(the checks of ``augment:`` and ``build_pipelines``) is ``augment.pipelines``; this file imports nothing
from the config, so that ``config.binding`` can register the transforms through it.
"""

from __future__ import annotations

import omnifuse.augment.audio
import omnifuse.augment.image  # noqa: F401  (registers the transforms)
from omnifuse.augment.base import AUGMENTS, MODALITY_READS, AugmentSpec, Pipeline, augment_batch

__all__ = ["AUGMENTS", "MODALITY_READS", "AugmentSpec", "Pipeline", "augment_batch"]

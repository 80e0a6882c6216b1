"""Groups of CLI commands, each in its own module with ``register(app)``; ``omnifuse.cli`` calls them.

Keeping each group in its own module keeps ``cli.py`` small and its imports lazy: a command imports what it
needs inside its body, so ``omnifuse --help`` never imports FastAPI, onnx or FAISS.
"""

from __future__ import annotations

GROUPS = ("serving", "export", "contrastive", "retrieval", "tune", "baseline", "generation")

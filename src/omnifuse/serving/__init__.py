"""HTTP serving: ``create_app(predictor)`` builds a FastAPI app (``omnifuse serve`` runs it with uvicorn).

FastAPI and uvicorn are optional (``pip install 'omnifuse[serve]'``); importing this package does not
import them, ``create_app`` does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from omnifuse.errors import MissingExtraError

if TYPE_CHECKING:
    from fastapi import FastAPI

SERVE_EXTRA = "pip install 'omnifuse[serve]'"


def require_serving() -> None:
    """Raises MissingExtraError naming the extra when FastAPI, uvicorn or python-multipart is missing."""
    import importlib.util

    missing = [name for name in ("fastapi", "uvicorn", "multipart") if importlib.util.find_spec(name) is None]
    if missing:
        raise MissingExtraError(f"omnifuse serving needs {', '.join(missing)}: {SERVE_EXTRA}")


def create_app(predictor: Any, **options: Any) -> FastAPI:
    """Builds the HTTP app for a loaded model; see ``omnifuse.serving.app.create_app`` for the options.

    Raises:
        ImportError: the serve extra is not installed.
    """
    require_serving()
    from omnifuse.serving.app import create_app as build

    return build(predictor, **options)


__all__ = ["create_app", "require_serving"]

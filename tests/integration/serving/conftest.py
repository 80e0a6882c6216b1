"""Real servers for the serving tests: uvicorn in a background thread on a free 127.0.0.1 port.

Fixtures (reusable by every test under tests/integration/serving):
  - ``serving_predictor``: the ``trained_dir`` model, loaded once;
  - ``start_server``: a factory ``start_server(**create_app_options) -> url`` (servers stop at the end);
  - ``server_url``: a server with files allowed from ``table_dir`` and small limits (``LIMITS``);
  - ``server_url_with_key``: the same model behind the API key of the ``api_key`` fixture;
  - ``test_rows``: rows of ``table_dir/test.csv`` with media as data URLs / raw base64, and their labels;
  - ``contrastive_dir``: a contrastive (embedding) model pretrained on ``table_dir`` (photo and note towers).
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from ..conftest import serving_app, wait_ready

API_KEY = "test-key-4f9c"
LIMITS: dict[str, Any] = {"max_body_bytes": 400_000, "max_file_bytes": 100_000, "max_pixels": 10_000}
INPUTS = ("photo", "sound", "note", "weight", "colour")


@pytest.fixture(scope="session")
def api_key() -> str:
    """The key of ``server_url_with_key``."""
    return API_KEY


@pytest.fixture(scope="session")
def input_names() -> tuple[str, ...]:
    """The input columns of the test model."""
    return INPUTS


@pytest.fixture(scope="session")
def serving_predictor(trained_dir: Path) -> Any:
    import omnifuse

    return omnifuse.load(trained_dir, device="cpu")


@pytest.fixture(scope="session")
def await_ready() -> Callable[[str, Callable[[], bool]], None]:
    """``wait_ready(url, alive)``, for tests that start their own server process."""
    return wait_ready


@pytest.fixture(scope="session")
def start_server(serving_predictor: Any) -> Iterator[Callable[..., str]]:
    """A factory: ``start_server(**options)`` serves ``create_app(serving_predictor, **options)``."""
    from omnifuse.serving import create_app

    with contextlib.ExitStack() as running:
        yield lambda **options: running.enter_context(serving_app(create_app(serving_predictor, **options)))


@pytest.fixture(scope="session")
def server_url(start_server: Callable[..., str], table_dir: Path) -> str:
    """A server with ``--allow-files table_dir`` and the small ``LIMITS``."""
    return start_server(allow_files=table_dir, **LIMITS)


@pytest.fixture(scope="session")
def server_url_with_key(start_server: Callable[..., str]) -> str:
    """A server that needs ``Authorization: Bearer API_KEY``."""
    return start_server(api_key=API_KEY, **LIMITS)


def data_url(path: Path, mime: str) -> str:
    """The file as a ``data:`` URL."""
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}"


def api_row(table_dir: Path, row: dict[str, Any]) -> dict[str, Any]:
    """A table row as the API takes it: the image as a data URL, the audio as raw base64."""
    out = {name: row[name] for name in INPUTS}
    out["photo"] = data_url(table_dir / row["photo"], "image/png")
    out["sound"] = base64.b64encode((table_dir / row["sound"]).read_bytes()).decode()
    return out


@pytest.fixture(scope="session")
def test_table(table_dir: Path) -> pd.DataFrame:
    return pd.read_csv(table_dir / "test.csv")


@pytest.fixture(scope="session")
def test_rows(table_dir: Path, test_table: pd.DataFrame) -> list[dict[str, Any]]:
    """The test table's rows in API form (media inline)."""
    return [api_row(table_dir, row) for row in test_table.to_dict(orient="records")]


PRETRAIN_YAML = """
label: {column: animal, task: contrastive}
columns:
  photo: {type: image, encoder: {name: small_cnn, size: 16, channels: 1}}
  note: {type: text, encoder: {name: bow, embed_dim: 16}}
contrastive: {columns: [note, photo], embed_dim: 16, queue_size: 16}
training: {epochs: 1, batch_size: 16, lr: 0.003}
"""


@pytest.fixture(scope="session")
def contrastive_dir(table_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A contrastive model folder (``omnifuse pretrain``): it embeds and searches, it does not predict."""
    from typer.testing import CliRunner

    from omnifuse.cli import app

    folder = tmp_path_factory.mktemp("contrastive")
    (folder / "pretrain.yaml").write_text(PRETRAIN_YAML)
    out = folder / "model"
    result = CliRunner().invoke(app, ["pretrain", "--config", str(folder / "pretrain.yaml"), "--train",
                                      str(table_dir / "train.csv"), "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    return out

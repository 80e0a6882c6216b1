"""Server hardening over real HTTP: JSON Python refuses, unreadable paths, made-up methods in metrics, a
failing warm-up, and a contrastive (embedding) model with a search index."""

from __future__ import annotations

import shutil
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

import omnifuse
from omnifuse.cli import app as cli_app
from omnifuse.commands.serving import load_search_index
from omnifuse.errors import ModelDirError
from omnifuse.serving.schema import ModelInfo

runner = CliRunner()
JSON = "application/json"


@pytest.mark.parametrize(("body", "message"), [
    (b'{"rows": [{"weight": ' + b"7" * 5000 + b"}]}", "Exceeds the limit (4300 digits)"),
    (b"[" * 50_000 + b"]" * 50_000, "it is nested too deeply"),
    (b'{"rows": [{"weight": NaN}]}', "NaN is not a JSON number"),
])
def test_json_python_refuses_is_400_not_500(server_url: str, body: bytes, message: str) -> None:
    for route in ("/v1/predict", "/v1/explain"):
        answer = httpx.post(f"{server_url}{route}", content=body, headers={"content-type": JSON})
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["message"].startswith("the request body is not valid JSON")
        assert message in answer.json()["error"]["message"]


@pytest.mark.parametrize(("path", "message"), [
    ("img/bad\u0000name.png", "cannot be read from the allowed folder (embedded null byte)"),
    ("img/" + "x" * 300 + ".png", "cannot be read from the allowed folder (File name too long)"),
])
def test_unreadable_allowed_paths_are_400(server_url: str, test_rows: list[dict[str, Any]], path: str,
                                          message: str) -> None:
    rows = [test_rows[0], {**test_rows[1], "photo": path}]
    answer = httpx.post(f"{server_url}/v1/predict", json={"rows": rows})
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert (error["row"], error["column"]) == (1, "photo") and message in error["message"]


def test_made_up_methods_do_not_create_metric_series(server_url: str) -> None:
    statuses = {method: httpx.request(method, f"{server_url}/v1/model").status_code
                for method in ("FOOBAR", "XYZZY1", "GET")}
    text = httpx.get(f"{server_url}/metrics").text
    assert "FOOBAR" not in text and "XYZZY1" not in text
    assert 'route="/v1/model",method="GET",status="200"' in text
    # httptools (the serve extra) refuses an unknown method with 400 before the app sees it; uvicorn's
    # pure-Python h11 parser passes it on, and the app answers 405, counted under method="OTHER"
    assert statuses["FOOBAR"] in (400, 405)
    if statuses["FOOBAR"] == 405:
        assert 'route="/v1/model",method="OTHER",status="405"' in text


def test_a_failing_warm_up_still_makes_the_server_ready(
    start_server: Callable[..., str], serving_predictor: Any, test_rows: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = serving_predictor.run_examples
    calls = [0]

    def fails_once(examples: list[Any]) -> Any:
        calls[0] += 1
        if calls[0] == 1:  # the server's warm-up: e.g. wav2vec2 cannot take a one-sample blank input
            raise RuntimeError("Calculated padded input size per channel: (1). Kernel size: (10)")
        return real(examples)

    monkeypatch.setattr(serving_predictor, "run_examples", fails_once)
    url = start_server()  # waits for /ready: stuck at 503 (and failing after 60 s) before the fix
    answer = httpx.post(f"{url}/v1/predict", json={"rows": test_rows[:2]})
    assert answer.status_code == 200 and len(answer.json()["predictions"]) == 2 and calls[0] == 2


# ------------------------------------------------------------------------------- contrastive model


def _index(model: Path, table_dir: Path, out: Path) -> Path:
    result = runner.invoke(cli_app, ["index", "--model", str(model), "--data", str(table_dir / "test.csv"),
                                     "--column", "note", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def contrastive_index(contrastive_dir: Path, table_dir: Path,
                      tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _index(contrastive_dir, table_dir, tmp_path_factory.mktemp("index") / "index")


@pytest.fixture(scope="module")
def contrastive_url(contrastive_dir: Path, contrastive_index: Path,
                    await_ready: Callable[..., None]) -> Iterator[tuple[str, Any, Any]]:
    """A server for the contrastive model with its index (loaded as ``omnifuse serve --index`` does)."""
    import uvicorn

    from omnifuse.serving import create_app

    predictor = omnifuse.load(contrastive_dir, device="cpu")
    index = load_search_index(contrastive_index, contrastive_dir, predictor)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(create_app(predictor, index=index), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        await_ready(url, thread.is_alive)
        yield url, predictor, index
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def test_a_contrastive_model_describes_itself_and_points_predict_to_search(
    contrastive_url: tuple[str, Any, Any], table_dir: Path,
) -> None:
    url, predictor, index = contrastive_url
    info = httpx.get(f"{url}/v1/model").json()
    assert ModelInfo.model_validate(info).task == "contrastive"
    assert info["explain"] is False and info["search"] is True
    row = {"photo": "", "note": "whiskers purr"}
    for route in ("/v1/predict", "/v1/explain"):
        answer = httpx.post(f"{url}{route}", json={"rows": [row]})
        assert answer.status_code == 422, answer.text
        error = answer.json()["error"]
        assert f"contrastive (embedding) model: it has no {route} answer" in error["message"]
        assert "POST /v1/search" in error["fix"]
    answer = httpx.post(f"{url}/v1/search", json={"text": "whiskers purr", "k": 3})
    assert answer.status_code == 200, answer.text
    assert [r["rank"] for r in answer.json()["results"]] == [1, 2, 3]
    assert index.model is predictor  # the served model embeds the queries: no second copy was loaded


def test_an_index_of_another_model_loads_it_at_startup(contrastive_dir: Path, contrastive_index: Path,
                                                       table_dir: Path, tmp_path: Path) -> None:
    served = omnifuse.load(contrastive_dir, device="cpu")
    linked = tmp_path / "same-model"
    linked.symlink_to(contrastive_dir)  # another spelling of the same folder still shares the model
    assert load_search_index(contrastive_index, linked, served).model is served
    copy = shutil.copytree(contrastive_dir, tmp_path / "copy")
    other_index = _index(copy, table_dir, tmp_path / "other-index")
    index = load_search_index(other_index, contrastive_dir, served)
    assert index.model is not None and index.model is not served  # loaded now, before any search
    shutil.rmtree(copy)
    with pytest.raises(ModelDirError, match=r"the index's model folder .*copy' does not exist any more"):
        load_search_index(other_index, contrastive_dir, served)
    result = runner.invoke(cli_app, ["serve", "--model", str(contrastive_dir), "--index", str(other_index)])
    assert result.exit_code != 0 and "does not exist any more" in str(result.exception)

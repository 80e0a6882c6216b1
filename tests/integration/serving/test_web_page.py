"""The web page at ``/`` in a real browser: Debian chromium driven by Playwright (sync API).

The page is generated from ``GET /v1/model``; these tests fill it like a person would (text, numbers, a
category, a PNG and a WAV upload), press Predict, and check what it shows against the Python API.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

import omnifuse
from omnifuse.config.sections import Config
from omnifuse.inference.predictor import Predictor

from .conftest import serving_app

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 20_000

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian chromium is not at /usr/bin/chromium; `make setup` installs it"
)


# ------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page (own sessionStorage); fails the test on any uncaught JavaScript error."""
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    new_page = context.new_page()
    new_page.set_default_timeout(TIMEOUT_MS)
    js_errors: list[str] = []
    new_page.on("pageerror", lambda exc: js_errors.append(str(exc)))
    yield new_page
    context.close()
    assert js_errors == [], js_errors


@pytest.fixture(scope="module")
def predictor(serving_predictor: Predictor) -> Predictor:
    return serving_predictor


@pytest.fixture(scope="module")
def regression_predictor(tmp_path_factory: pytest.TempPathFactory) -> Predictor:
    """A small regression model: label ``y`` from a number ``x``, a colour and a note."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=90)
    table = pd.DataFrame(
        {
            "x": x,
            "colour": rng.choice(["red", "blue"], size=90),
            "note": rng.choice(["calm sea", "windy hill", "dry field"], size=90),
            "y": 3 * x + 1,
        }
    )
    config = Config.from_dict(
        {
            "label": {"column": "y", "task": "regression"},
            "columns": {"x": {"type": "numeric"}, "colour": {"type": "categorical"},
                        "note": {"type": "text", "encoder": {"name": "bow", "embed_dim": 8}}},
            "fusion": "attention",
            "training": {"epochs": 2, "batch_size": 32, "lr": 0.01},
        }
    )
    out = tmp_path_factory.mktemp("regression") / "model"
    return omnifuse.train(config, table[:60], table[60:], out=out, progress=False)


@pytest.fixture(scope="module")
def regression_url(regression_predictor: Predictor) -> Iterator[str]:
    """Serves the regression model (the shared ``start_server`` serves only the classification model)."""
    from omnifuse.serving import create_app

    with serving_app(create_app(regression_predictor)) as url:
        yield url


@pytest.fixture(scope="module")
def model_info(server_url: str) -> dict[str, Any]:
    return httpx.get(f"{server_url}/v1/model", timeout=10).json()


@pytest.fixture(scope="module")
def test_row(table_dir: Path, predictor: Predictor) -> dict[str, Any]:
    """A row of the table's test split (absolute file paths) whose classes, sorted by probability, are
    not in the model's class order, so that the page's sorting is visible."""
    rows = pd.read_csv(table_dir / "test.csv").drop(columns=["animal"])
    for column in ("photo", "sound"):
        rows[column] = [str(table_dir / path) for path in rows[column]]
    probabilities = predictor.predict_proba(rows)
    for position in range(len(rows)):
        ranked = probabilities.iloc[position].sort_values(ascending=False).index.tolist()
        if ranked != list(probabilities.columns):
            return dict(rows.iloc[position].to_dict())
    raise AssertionError("every test row ranks the classes in class order")


# ------------------------------------------------------------------------------------------- helpers


def fill_form(page: Any, row: dict[str, Any]) -> None:
    """Types, picks and uploads the row's values into the generated form."""
    page.fill("#col-note", str(row["note"]))
    page.fill("#col-weight", repr(float(row["weight"])))
    page.select_option("#col-colour", str(row["colour"]))
    page.set_input_files("#col-photo", row["photo"])
    page.set_input_files("#col-sound", row["sound"])


def wait_for_result(page: Any) -> None:
    page.click("#predict")
    page.wait_for_selector("#result:not([hidden]) #contributions .contrib-row")


def wait_for_error(page: Any) -> str:
    page.wait_for_selector("#error:not([hidden])")
    return str(page.inner_text("#error"))


def datasets(page: Any, selector: str, key: str) -> list[str]:
    """The ``data-<key>`` attribute of every element matching ``selector``, in page order."""
    return list(page.locator(selector).evaluate_all(f"nodes => nodes.map(n => n.dataset.{key})"))


def percentages(page: Any) -> list[float]:
    return [float(text.rstrip("%")) for text in page.locator("#probabilities .bar-value").all_inner_texts()]


# ------------------------------------------------------------------------------------------- tests


def test_form_is_generated_from_the_columns(page: Any, server_url: str, model_info: dict[str, Any]) -> None:
    page.goto(server_url + "/")
    page.wait_for_selector("#fields .field")
    columns = model_info["columns"]
    assert page.locator("#fields .field").count() == len(columns)
    assert page.inner_text("#model-name") == model_info["name"]
    assert model_info["task"] in page.inner_text("#model-task").lower()
    assert "accuracy" in page.inner_text("#metrics").lower()
    kinds = {}
    for column in columns:
        control = page.locator(f"#col-{column['name']}")
        kinds[column["name"]] = control.evaluate(
            "e => [e.tagName.toLowerCase(), e.type, e.accept || '', "
            "e.tagName === 'SELECT' ? [...e.options].map(o => o.value).filter(v => v) : null]"
        )
        assert page.locator(f"label[for='col-{column['name']}']").count() == 1  # every input is labelled
    assert kinds["note"][0] == "textarea"
    assert kinds["weight"][:2] == ["input", "number"]
    assert kinds["photo"][:3] == ["input", "file", "image/*"]
    assert kinds["sound"][:3] == ["input", "file", "audio/*"]
    categories = next(c["categories"] for c in columns if c["name"] == "colour")
    assert kinds["colour"][0] == "select" and sorted(kinds["colour"][3]) == sorted(categories)


def test_predict_shows_the_same_answer_as_the_python_api(
    page: Any, server_url: str, predictor: Predictor, test_row: dict[str, Any], tmp_path: Path
) -> None:
    page.goto(server_url + "/")
    page.wait_for_selector("#col-photo")
    fill_form(page, test_row)
    assert page.locator("#preview-photo").evaluate("img => img.complete && img.naturalWidth") == 16
    assert page.locator("#preview-sound").evaluate("a => a.tagName === 'AUDIO' && a.src.startsWith('blob:')")
    wait_for_result(page)

    expected = predictor.predict(test_row)
    assert page.inner_text("#prediction") == str(expected)
    assert page.inner_text("#prediction") in [str(c) for c in predictor.classes]
    shown = {
        row.get_attribute("data-class"): float(row.get_attribute("data-probability"))
        for row in page.locator("#probabilities .bar-row").all()
    }
    probabilities = predictor.predict_proba(test_row)
    assert shown == pytest.approx(probabilities, abs=1e-4)
    assert sum(percentages(page)) == pytest.approx(100.0, abs=0.5)
    assert percentages(page) == sorted(percentages(page), reverse=True)
    ranked = sorted(probabilities, key=lambda name: -probabilities[name])
    assert datasets(page, "#probabilities .bar-row", "class") == ranked
    assert page.locator("#probabilities .bar-row.chosen").get_attribute("data-class") == str(expected)

    explained = predictor.explain(test_row).iloc[0]
    inputs = {c.removeprefix("delta_") for c in explained.index if c.startswith("delta_")}
    deltas = {
        row.get_attribute("data-input"): float(row.get_attribute("data-delta"))
        for row in page.locator("#contributions .contrib-row").all()
    }
    assert set(deltas) == inputs == {"photo", "sound", "note", "tabular"}
    assert deltas == pytest.approx({name: explained[f"delta_{name}"] for name in inputs}, abs=1e-4)
    assert page.locator("#contributions .contrib-fill").count() == len(inputs)
    assert page.locator("#error").is_hidden()

    shot = tmp_path / "page.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000


def test_an_undecodable_upload_shows_the_error_naming_the_column(
    page: Any, server_url: str, test_row: dict[str, Any], tmp_path: Path
) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"this is not a PNG image at all")
    page.goto(server_url + "/")
    page.wait_for_selector("#col-photo")
    fill_form(page, {**test_row, "photo": str(broken)})
    page.click("#predict")
    text = wait_for_error(page)
    assert "photo" in text
    assert page.get_attribute("#error", "data-column") == "photo"
    assert page.get_attribute("#error", "data-status") == "400"
    assert page.locator(".field.invalid").get_attribute("data-column") == "photo"
    assert page.locator("#result").is_hidden()


def test_page_fits_a_narrow_window(browser: Any, server_url: str) -> None:
    context = browser.new_context(viewport={"width": 375, "height": 800})
    narrow = context.new_page()
    narrow.goto(server_url + "/")
    narrow.wait_for_selector("#fields .field")
    overflow = narrow.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    context.close()
    assert overflow <= 0


def test_regression_shows_the_number_without_a_bar_chart(page: Any, regression_url: str) -> None:
    page.goto(regression_url + "/")
    page.wait_for_selector("#col-x")
    assert "regression" in page.inner_text("#model-task").lower()
    page.fill("#col-x", "0.5")
    page.select_option("#col-colour", "blue")
    page.fill("#col-note", "calm sea")
    wait_for_result(page)
    row = {"x": 0.5, "colour": "blue", "note": "calm sea"}
    answer = httpx.post(f"{regression_url}/v1/predict", json={"rows": [row]}, timeout=10).json()
    expected = answer["predictions"][0]["prediction"]
    assert float(page.get_attribute("#prediction", "data-value")) == pytest.approx(expected, abs=1e-6)
    assert float(page.inner_text("#prediction")) == pytest.approx(expected, abs=1e-3)
    assert page.locator("#probabilities-block").is_hidden()
    assert page.locator("#probabilities .bar-row").count() == 0
    assert "pts" not in page.inner_text("#contributions")  # deltas in the label's units, not probability
    assert sorted(datasets(page, "#contributions .contrib-row", "input")) == ["note", "tabular"]


def test_api_key_from_the_page(
    page: Any, server_url_with_key: str, api_key: str, test_row: dict[str, Any]
) -> None:
    page.goto(server_url_with_key + "/")
    text = wait_for_error(page)  # /v1/model needs the key: the page says so instead of a form
    assert "401" in text and "API key" in text
    assert page.locator("#fields .field").count() == 0 and page.locator("#predict").is_disabled()

    assert "Enter the API key" in page.inner_text("#fields")

    page.fill("#api-key", "wrong-key")
    with page.expect_response("**/v1/model") as answer:
        page.click("#save-key")
    assert answer.value.status == 401
    assert answer.value.request.headers["authorization"] == "Bearer wrong-key"
    assert "401" in wait_for_error(page)
    assert page.locator("#fields .field").count() == 0

    page.fill("#api-key", api_key)
    page.click("#save-key")
    page.wait_for_selector("#col-photo")
    assert page.locator("#error").is_hidden()
    assert page.evaluate("sessionStorage.getItem('omnifuse.apiKey')") == api_key
    fill_form(page, test_row)
    wait_for_result(page)
    assert page.inner_text("#prediction") in ["cat", "dog", "owl"]

    page.reload()  # the key survives a reload in the same tab
    page.wait_for_selector("#col-photo")
    assert page.input_value("#api-key") == api_key

    page.fill("#api-key", "expired-key")  # a key that stops working shows the 401 on Predict
    page.click("#save-key")
    fill_form(page, test_row)
    page.click("#predict")
    assert "401" in wait_for_error(page)
    assert page.locator("#result").is_hidden()


def test_a_contrastive_model_shows_a_message_instead_of_a_form(page: Any, contrastive_dir: Path,
                                                               await_ready: Callable[..., None]) -> None:
    import uvicorn

    from omnifuse.serving import create_app

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    app = create_app(omnifuse.load(contrastive_dir, device="cpu"))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        await_ready(url, thread.is_alive)
        page.goto(url + "/")
        message = page.locator("#no-predict")
        message.wait_for()
        assert "contrastive (embedding) model: it does not predict" in message.inner_text()
        assert "--index DIR" in message.inner_text()
        assert page.locator("#predict").is_disabled() and page.locator("#fields input").count() == 0
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()

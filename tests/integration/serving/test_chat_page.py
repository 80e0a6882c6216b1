"""The chat page of a generation model in a real browser (Debian chromium, Playwright): attach an image,
ask, read the streamed answer; it is what Predictor.chat writes; errors show on the page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import omnifuse

from ..test_chat import chat_model  # noqa: F401  (the model trained on conversations)
from .conftest import serving_app

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian chromium is not at /usr/bin/chromium; `make setup` installs it"
)


@pytest.fixture(scope="module")
def chat_url(chat_model: Path) -> Iterator[str]:  # noqa: F811
    from omnifuse.serving.chat_app import create_chat_app

    with serving_app(create_chat_app(omnifuse.load(chat_model / "m"), model_name="digits")) as url:
        yield url


@pytest.fixture
def page() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                    args=["--no-sandbox", "--disable-gpu"])
        new_page = browser.new_page()
        new_page.set_default_timeout(20_000)
        errors: list[str] = []
        new_page.on("pageerror", lambda exc: errors.append(str(exc)))
        yield new_page
        browser.close()
        assert errors == [], errors


def test_the_page_streams_the_answer_predictor_chat_writes(page: Any, chat_url: str,
                                                           chat_model: Path) -> None:  # noqa: F811
    image = sorted((chat_model / "img").iterdir())[0]
    page.goto(chat_url + "/")
    page.wait_for_function("document.querySelector('#model-name').textContent === 'digits'")
    page.set_input_files("#image", str(image))
    page.wait_for_function("document.querySelector('#attached').textContent.includes('image')")
    page.fill("#prompt", "What animal is this?")
    page.click("#send")
    page.wait_for_selector(".msg.assistant:not(.writing)")
    shown = page.inner_text(".msg.assistant")
    expected = omnifuse.load(chat_model / "m").chat([{"role": "user", "content": "What animal is this?"}],
                                                    {"image": image})
    assert shown and shown == expected
    page.click("#reset")
    assert page.locator(".msg").count() == 0


def test_a_question_without_the_image_shows_the_servers_error(page: Any, chat_url: str) -> None:
    page.goto(chat_url + "/")
    page.fill("#prompt", "What animal is this?")
    page.click("#send")
    page.wait_for_selector("#error:not([hidden])")
    assert "image" in page.inner_text("#error") and page.locator(".msg.assistant").count() == 0

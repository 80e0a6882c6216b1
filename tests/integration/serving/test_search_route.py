"""``/v1/search`` against a stand-in index with the ``omnifuse.retrieval`` search signature."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import httpx
import pandas as pd
import pytest

from omnifuse.errors import BadValueError


class FakeIndex:
    """Records queries; answers k rows whose caption says what was asked."""

    def __init__(self) -> None:
        self.queries: list[dict[str, Any]] = []

    def search(self, text: str | None = None, image: bytes | None = None, audio: bytes | None = None,
               k: int = 10) -> pd.DataFrame:
        self.queries.append({"text": text, "image": image, "audio": audio, "k": k})
        if text == "unsupported":
            raise BadValueError("this index has no text tower", "query with an image")
        asked = text if text is not None else f"{len(image or audio or b'')} bytes"
        return pd.DataFrame({"rank": range(1, k + 1), "score": [1.0 / r for r in range(1, k + 1)],
                             "id": [f"row{r}" for r in range(k)], "caption": [asked] * k})


@pytest.fixture(scope="module")
def fake_index() -> FakeIndex:
    return FakeIndex()


@pytest.fixture(scope="module")
def search_url(start_server: Callable[..., str], fake_index: FakeIndex) -> str:
    return start_server(index=fake_index)


def test_search_by_text_and_by_image(search_url: str, fake_index: FakeIndex) -> None:
    answer = httpx.post(f"{search_url}/v1/search", json={"text": "a barking dog", "k": 3})
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert [r["rank"] for r in results] == [1, 2, 3] and results[1]["score"] == pytest.approx(0.5)
    assert results[0] == {"rank": 1, "score": 1.0, "id": "row0", "metadata": {"caption": "a barking dog"}}
    image = "data:image/png;base64," + base64.b64encode(b"12345").decode()
    answer = httpx.post(f"{search_url}/v1/search", json={"image": image})
    results = answer.json()["results"]
    assert results[0]["metadata"]["caption"] == "5 bytes" and len(results) == 10
    assert fake_index.queries[-1]["image"] == b"12345"
    assert httpx.get(f"{search_url}/v1/model").json()["search"] is True
    assert "/v1/search" in httpx.get(f"{search_url}/openapi.json").json()["paths"]


def test_search_errors(search_url: str) -> None:
    for body, status, message in (({"text": "a", "audio": "QUJD"}, 422, "exactly one of text, image, audio"),
                                  ({"audio": "@@"}, 400, "field 'audio': cannot decode the base64 data"),
                                  ({"text": "unsupported"}, 400, "this index has no text tower")):
        answer = httpx.post(f"{search_url}/v1/search", json=body)
        assert answer.status_code == status and message in answer.json()["error"]["message"]

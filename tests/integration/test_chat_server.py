"""The OpenAI-compatible server of a generation model, driven by the official ``openai`` client: plain and
streamed answers, an image and an audio attached as data URLs / base64, errors in OpenAI's shape."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

import omnifuse

from .test_chat import chat_model  # noqa: F401  (the trained conversation model)

openai = pytest.importorskip("openai", reason="the dev extra installs the openai client")
pytest.importorskip("fastapi", reason="the serving extra")


@pytest.fixture(scope="module")
def client(chat_model: Path):  # noqa: ANN201, F811
    from fastapi.testclient import TestClient

    from omnifuse.serving.chat_app import create_chat_app

    app = create_chat_app(omnifuse.load(chat_model / "m"), api_key="k", model_name="digits")
    with TestClient(app, base_url="http://test") as http:  # an httpx.Client over the ASGI app
        yield openai.OpenAI(base_url="http://test/v1", api_key="k", http_client=http, max_retries=0), http


def _image(chat_model: Path) -> str:  # noqa: F811
    path = sorted((chat_model / "img").iterdir())[0]
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def _messages(image: str) -> list[dict]:
    return [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": image}},
                                         {"type": "text", "text": "What animal is this?"}]}]


def test_a_completion_with_an_image_and_its_stream_agree(client, chat_model: Path) -> None:  # noqa: ANN001, F811
    api, _ = client
    assert [m.id for m in api.models.list().data] == ["digits"]
    messages = _messages(_image(chat_model))
    answer = api.chat.completions.create(model="digits", messages=messages, max_tokens=6)
    text = answer.choices[0].message.content
    assert answer.object == "chat.completion" and isinstance(text, str) and text
    assert answer.choices[0].finish_reason in ("stop", "length") and answer.usage.total_tokens > 0
    expected = omnifuse.load(chat_model / "m").chat(
        [{"role": "user", "content": "What animal is this?"}],
        {"image": sorted((chat_model / "img").iterdir())[0]}, max_new_tokens=6)
    assert text == expected  # the server writes what Predictor.chat writes
    pieces = [c.choices[0].delta.content or "" for c in
              api.chat.completions.create(model="digits", messages=messages, max_tokens=6, stream=True)]
    assert "".join(pieces) == text


def test_bad_requests_get_openai_errors_not_500(client, chat_model: Path) -> None:  # noqa: ANN001, F811
    api, http = client
    with pytest.raises(openai.NotFoundError, match="does not exist here"):
        api.chat.completions.create(model="gpt-9", messages=_messages(_image(chat_model)))
    with pytest.raises(openai.BadRequestError, match="temperature"):
        api.chat.completions.create(model="digits", messages=_messages(_image(chat_model)), temperature=9)
    with pytest.raises(openai.BadRequestError, match="no 'audio' medium"):
        api.chat.completions.create(model="digits", messages=[{"role": "user", "content": [
            {"type": "input_audio", "input_audio": {"data": base64.b64encode(b"RIFF").decode(),
                                                    "format": "wav"}}]}])
    with pytest.raises(openai.BadRequestError, match="image"):  # the model needs its image
        api.chat.completions.create(model="digits", messages=[{"role": "user", "content": "hi"}])
    refused = http.post("/v1/chat/completions", json={"messages": []}, headers={"Authorization": "Bearer k"})
    assert refused.status_code == 400 and set(refused.json()["error"]) == {"message", "type", "param", "code"}
    assert http.get("/v1/models").status_code == 401  # no key


def test_concurrent_requests_are_written_in_one_batch_with_the_same_answers(chat_model: Path) -> None:  # noqa: F811
    import asyncio

    import httpx

    from omnifuse.serving.chat_app import create_chat_app

    app = create_chat_app(omnifuse.load(chat_model / "m"), model_name="digits", max_wait_ms=200.0)
    images = sorted((chat_model / "img").iterdir())[:4]
    bodies = [{"messages": _messages("data:image/png;base64," + base64.b64encode(p.read_bytes()).decode()),
               "max_tokens": 4} for p in images]

    async def ask_all() -> list[str]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
                answers = await asyncio.gather(*(http.post("/v1/chat/completions", json=b) for b in bodies))
                alone = [await http.post("/v1/chat/completions", json=b) for b in bodies]
        assert all(a.status_code == 200 for a in [*answers, *alone])
        together = [a.json()["choices"][0]["message"]["content"] for a in answers]
        assert together == [a.json()["choices"][0]["message"]["content"] for a in alone]
        return together

    asyncio.run(ask_all())
    assert app.state.chat.largest_batch > 1  # the four concurrent answers shared a generate call


def test_a_stream_and_a_batch_at_once_take_turns_and_a_cut_stream_says_length(chat_model: Path) -> None:  # noqa: F811
    import asyncio
    import json

    import httpx

    from omnifuse.serving.chat_app import create_chat_app

    app = create_chat_app(omnifuse.load(chat_model / "m"), model_name="digits")
    body = {"messages": _messages(_image(chat_model)), "max_tokens": 1}

    async def both() -> tuple[httpx.Response, httpx.Response]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
                streamed, plain = await asyncio.wait_for(asyncio.gather(
                    http.post("/v1/chat/completions", json={**body, "stream": True}),
                    http.post("/v1/chat/completions", json=body)), timeout=60)
        return streamed, plain

    streamed, plain = asyncio.run(both())
    events = [json.loads(line[6:]) for line in streamed.text.splitlines()
              if line.startswith("data: {")]
    text = "".join(e["choices"][0]["delta"].get("content") or "" for e in events)
    assert text and text == plain.json()["choices"][0]["message"]["content"]
    finish = (events[-1]["choices"][0]["finish_reason"], plain.json()["choices"][0]["finish_reason"])
    assert finish == ("length", "length")  # one token allowed: both answers were cut by max_tokens


def test_a_bad_token_limit_names_its_key(client, chat_model: Path) -> None:  # noqa: ANN001, F811
    _, http = client
    body = {"messages": _messages(_image(chat_model)), "max_completion_tokens": 0}
    refused = http.post("/v1/chat/completions", json=body, headers={"Authorization": "Bearer k"})
    assert refused.status_code == 400 and "'max_completion_tokens' is 0" in refused.json()["error"]["message"]

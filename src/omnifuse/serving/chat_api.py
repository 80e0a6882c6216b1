"""An OpenAI-compatible chat server for generation models: ``POST /v1/chat/completions``, ``GET /v1/models``.

A request's ``messages`` (content as a string or as parts: ``text``, ``image_url`` with a data URL (a file
path only under ``--allow-files``), ``input_audio`` with base64 ``data``) become one chat row
(``generation.chat.chat_row``): the history through the model's prompt column, the last image and audio
attached at any turn as its media. Answers are written on one model thread (requests wait their turn);
``stream: true`` sends ``chat.completion.chunk`` server-sent events ending with ``data: [DONE]``. Errors
have OpenAI's shape, ``{"error": {"message", "type", "param", "code"}}``, with a 4xx status for bad input.
"""

from __future__ import annotations

import asyncio
import functools
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Generator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omnifuse.serving.decode import Limits, b64decode, load_json, media_bytes
from omnifuse.serving.errors import ApiError

if TYPE_CHECKING:
    from fastapi.responses import JSONResponse

    from omnifuse.inference.predictor import Predictor

MAX_CHOICES = 8
ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error",
               413: "invalid_request_error", 503: "server_error", 504: "timeout"}


@dataclass(frozen=True)
class ChatRequest:
    """A checked ``/v1/chat/completions`` body."""

    messages: list[dict[str, str]]
    media: dict[str, bytes]
    options: dict[str, Any]  # Predictor.generate's decoding keywords
    choices: int
    stream: bool


def parse_chat_request(body: bytes, model_name: str, limits: Limits) -> ChatRequest:
    """The request's messages, media and decoding options.

    Raises:
        ApiError: 400 for a malformed body or value, 404 for another model's name.
    """
    data = load_json(body, 'send {"messages": [{"role": "user", "content": "..."}]}')
    if not isinstance(data, dict) or not isinstance(data.get("messages"), list) or not data["messages"]:
        raise ApiError(400, "the body needs 'messages', a non-empty list", fix="see OpenAI's chat API")
    if data.get("model") not in (None, "", model_name):
        raise ApiError(404, f"the model {data['model']!r} does not exist here; this server has "
                       f"{model_name!r}", fix="GET /v1/models lists it")
    messages: list[dict[str, str]] = []
    media: dict[str, bytes] = {}
    for i, message in enumerate(data["messages"]):
        messages.append(_message(i, message, media, limits))
    choices = _number(data, "n", 1, int, 1, MAX_CHOICES)
    return ChatRequest(messages, media, _decoding(data), int(choices), bool(data.get("stream", False)))


def _message(i: int, message: Any, media: dict[str, bytes], limits: Limits) -> dict[str, str]:
    """One message as {role, content}; its image and audio parts go into ``media``."""
    if not isinstance(message, dict) or not isinstance(message.get("role"), str):
        raise ApiError(400, f"messages[{i}] needs a 'role' and a 'content'", fix="see OpenAI's chat API")
    content = message.get("content")
    if isinstance(content, str):
        return {"role": message["role"], "content": content}
    if not isinstance(content, list):
        raise ApiError(400, f"messages[{i}].content must be a string or a list of parts")
    texts = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif kind == "image_url" and isinstance(part.get("image_url"), dict):
            media["image"] = media_bytes(i, "image_url", str(part["image_url"].get("url", "")), limits)
        elif kind == "input_audio" and isinstance(part.get("input_audio"), dict):
            media["audio"] = b64decode(i, "input_audio", str(part["input_audio"].get("data", "")), limits)
        else:
            raise ApiError(400, f"messages[{i}].content[{j}] is not a text, image_url or input_audio part",
                           fix='e.g. {"type": "image_url", "image_url": {"url": '
                               '"data:image/png;base64,..."}}')
    return {"role": message["role"], "content": "\n".join(texts)}


def _decoding(data: dict[str, Any]) -> dict[str, Any]:
    """Predictor.generate's keywords from the request (temperature 0, the default, is greedy)."""
    stop = data.get("stop") or []
    stops = [stop] if isinstance(stop, str) else stop
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        raise ApiError(400, "'stop' must be a string or a list of strings")
    key = "max_completion_tokens" if "max_completion_tokens" in data else "max_tokens"
    return {
        "max_new_tokens": None if data.get(key) is None else int(_number(data, key, None, int, 1, 4096)),
        "temperature": float(_number(data, "temperature", 0.0, float, 0.0, 2.0)),
        "top_p": float(_number(data, "top_p", 1.0, float, 0.0, 1.0)),
        "seed": None if data.get("seed") is None else int(_number(data, "seed", 0, int, 0, 2**63 - 1)),
        "stop": stops,
    }


def _number(data: dict[str, Any], key: str, default: Any, kind: type, low: float, high: float) -> Any:
    value = data.get(key, default) if key in data else default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high or (
            kind is int and int(value) != value):
        raise ApiError(400, f"'{key}' is {value!r}; it must be a{'n integer' if kind is int else ' number'} "
                       f"in [{low:g}, {high:g}]")
    return kind(value)


class ChatService:
    """Answers chat requests with ``predictor`` on one model thread; answers that arrive within
    ``max_wait_s`` of each other are written in one batch (``serving.batching.MicroBatcher``; rows with
    the same decoding options share a ``generate`` call, and left-aligned prefixes make a batched answer
    the one written alone)."""

    def __init__(self, predictor: Predictor, model_name: str, limits: Limits, timeout_s: float,
                 max_batch: int = 8, max_wait_s: float = 0.01) -> None:
        from omnifuse.serving.batching import MicroBatcher

        self.predictor, self.model_name, self.limits = predictor, model_name, limits
        self.timeout_s = timeout_s
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="omnifuse-chat")
        self.base = limits.allow_files or Path.cwd()
        self.batcher = MicroBatcher(self.write_batch, self.pool, max_batch, max_wait_s, self._record)
        self.writing = threading.Lock()  # one writer of answers at a time (a batch, or a stream)
        self.largest_batch = 0  # most answers written together so far
        self.ready = False

    def _record(self, rows: int, requests: int) -> None:
        self.largest_batch = max(self.largest_batch, rows)

    async def run(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.pool, functools.partial(fn, *args))

    def answers(self, request: ChatRequest) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """(row, decoding options) of each of the request's ``n`` answers (seeds offset per answer)."""
        from omnifuse.generation.chat import chat_row

        row = chat_row(self.predictor.config, request.messages, request.media)
        out = []
        for choice in range(request.choices):
            options = dict(request.options)
            if options["seed"] is not None:
                options["seed"] += choice  # n choices: different samples, reproducible
            out.append((row, options))
        return out

    def write_batch(self, items: list[tuple[dict[str, Any], dict[str, Any]]]) -> list[str]:
        """The answers of a batch of (row, options), one ``generate`` call per distinct options."""
        groups: dict[str, list[int]] = {}
        for i, (_, options) in enumerate(items):
            groups.setdefault(json.dumps(options, sort_keys=True), []).append(i)
        texts: list[str] = [""] * len(items)
        with self.writing:
            self._write_groups(items, groups, texts)
        return texts

    def _write_groups(self, items: list[tuple[dict[str, Any], dict[str, Any]]], groups: dict[str, list[int]],
                      texts: list[str]) -> None:
        for indices in groups.values():
            rows = [items[i][0] for i in indices]
            written = self.predictor.generate(rows, self.base, **items[indices[0]][1])
            for i, text in zip(indices, written, strict=True):
                texts[i] = str(text)

    def completion(self, request: ChatRequest, texts: list[str]) -> dict[str, Any]:
        """The ``chat.completion`` object of the written texts (token counts: the model's tokenizer)."""
        limit = request.options["max_new_tokens"] or self._default_tokens()
        counts = [self._tokens(t) for t in texts]
        choices = [{"index": i, "message": {"role": "assistant", "content": t},
                    "finish_reason": "length" if n >= limit else "stop", "logprobs": None}
                   for i, (t, n) in enumerate(zip(texts, counts, strict=True))]
        prompt = self._tokens(json.dumps(request.messages))
        return {**self._envelope("chat.completion"), "choices": choices,
                "usage": {"prompt_tokens": prompt, "completion_tokens": sum(counts),
                          "total_tokens": prompt + sum(counts)}}

    def _envelope(self, kind: str) -> dict[str, Any]:
        return {"id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "object": kind, "created": int(time.time()),
                "model": self.model_name}

    def _tokens(self, text: str) -> int:
        return len(self.predictor.task.vocab.encode(text))  # type: ignore[attr-defined]

    def _default_tokens(self) -> int:
        section = self.predictor.config.generation
        return section.max_new_tokens if section is not None else 0

    def pieces(self, request: ChatRequest) -> Generator[str, None, None]:
        """The streamed answer's pieces, written while holding the model (``writing``): a batch waits for
        the stream, so two writers never share the model or its random numbers."""
        with self.writing:
            yield from self.predictor.chat(request.messages, request.media, self.base, stream=True,
                                           **request.options)

    async def events(self, request: ChatRequest) -> AsyncIterator[str]:
        """Server-sent events of a streamed answer: the role, the pieces, the finish, ``[DONE]``. The
        pieces are pulled on a thread of their own (not the model thread, where a waiting batch sits)."""
        envelope = self._envelope("chat.completion.chunk")

        def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
            body = {**envelope, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
            return f"data: {json.dumps(body)}\n\n"

        yield chunk({"role": "assistant", "content": ""})
        pieces, count = self.pieces(request), 0
        try:
            while (piece := await asyncio.to_thread(next, pieces, None)) is not None:
                count += 1
                yield chunk({"content": piece})
        finally:
            await asyncio.to_thread(pieces.close)
        limit = request.options["max_new_tokens"] or self._default_tokens()
        yield chunk({}, "length" if count >= limit else "stop")
        yield "data: [DONE]\n\n"


def openai_error(status: int, message: str, fix: str | None = None) -> JSONResponse:
    """OpenAI's error object (the fix appended to the message)."""
    from fastapi.responses import JSONResponse

    text = f"{message}; {fix}" if fix else message
    return JSONResponse({"error": {"message": text, "type": ERROR_TYPES.get(status, "invalid_request_error"),
                                   "param": None, "code": None}}, status)

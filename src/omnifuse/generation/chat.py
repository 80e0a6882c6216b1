"""Chat with a generation model: messages (and media) -> the one row its prompt column and media read.

A model trained on conversations (``generation.conversations``) has a ``lm_prompt`` input that reads the
history as a JSON list of ``{"role", "content"}`` messages; ``chat_row`` builds that row from a chat's
messages and the media attached to it, and ``ChatSession`` keeps a multi-turn history for ``omnifuse chat``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omnifuse.errors import DataError
from omnifuse.generation.conversations import ROLES, strip_placeholders

if TYPE_CHECKING:
    from omnifuse.config.sections import Config

MEDIA_TYPES = ("image", "audio", "video")


def prompt_column(config: Config) -> str:
    """The model's ``lm_prompt`` input, which reads the chat history.

    Raises:
        DataError: the model has none (or several).
    """
    prompts = [n for n in config.input_names() if config.encoder_of(n).name == "lm_prompt"]
    if len(prompts) != 1:
        raise DataError(f"chat needs a model with one prompt column (encoder lm_prompt), this one has "
                        f"{len(prompts)}; train on conversations, or with init-config --prompt-column")
    return prompts[0]


def media_columns(config: Config) -> dict[str, str]:
    """{media column: its type} of the model's image, audio and video inputs."""
    return {n: c.type for n, c in config.table_columns().items() if c.type in MEDIA_TYPES}


def chat_row(config: Config, messages: Sequence[Mapping[str, Any]],
             media: Mapping[str, Any]) -> dict[str, Any]:
    """The row ``Predictor.generate`` reads for ``messages`` (ending with the user's turn) and ``media``
    ({column or type ("image", "audio"): path or bytes}; a media column not given is left empty).

    Raises:
        DataError: a malformed message, a last turn that is not the user's, or an unknown medium.
    """
    history = []
    for i, message in enumerate(messages):
        role = ROLES.get(str(message.get("role", "")))
        if role is None or not isinstance(message.get("content"), str):
            raise DataError(f"message {i} is {dict(message)!r}; each message needs a role (user, assistant "
                            "or system) and a text content")
        history.append({"role": role, "content": strip_placeholders(str(message["content"]))})
    if not history or history[-1]["role"] != "user":
        raise DataError("the last message must be the user's: the model answers it")
    row: dict[str, Any] = {n: "" for n in media_columns(config)}
    for key, value in media.items():
        row[_media_column(config, key)] = value
    row[prompt_column(config)] = json.dumps(history, ensure_ascii=False)
    return row


def _media_column(config: Config, key: str) -> str:
    columns = media_columns(config)
    if key in columns:
        return key
    typed = [n for n, kind in columns.items() if kind == key]
    if not typed:
        raise DataError(f"this model reads no {key!r} medium; its media columns: "
                        f"{', '.join(f'{n} ({t})' for n, t in columns.items()) or 'none'}")
    return typed[0]


@dataclass
class ChatSession:
    """A multi-turn chat: the history and the attached media; ``ask`` answers with ``reply`` (the answer,
    or an iterator of its pieces)."""

    reply: Callable[[list[dict[str, str]], dict[str, Any]], str | Iterable[str]]
    history: list[dict[str, str]] = field(default_factory=list)
    media: dict[str, Any] = field(default_factory=dict)

    def ask(self, text: str, on_piece: Callable[[str], None] | None = None) -> str:
        """Adds the user's turn, answers it (each piece to ``on_piece`` as it comes), keeps the answer in
        the history."""
        self.history.append({"role": "user", "content": text})
        try:
            written = self.reply(self.history, self.media)
            answer = ""
            for piece in [written] if isinstance(written, str) else written:
                answer += piece
                if on_piece is not None:
                    on_piece(piece)
        except Exception:
            self.history.pop()  # a failed turn leaves the history as it was
            raise
        self.history.append({"role": "assistant", "content": answer})
        return answer

    def attach(self, kind: str, path: Path) -> None:
        """Attaches a medium (``image``, ``audio`` or a column name) for the next turns."""
        if not path.is_file():
            raise DataError(f"{path}: no such file; give the path of the {kind} to attach")
        self.media[kind] = str(path.resolve())

    def reset(self) -> None:
        """Forgets the history and the media."""
        self.history.clear()
        self.media.clear()

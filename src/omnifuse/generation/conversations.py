"""LLaVA-style conversations: a JSONL table whose ``conversations`` field holds the turns of each row.

``{"image": "img/1.png", "audio": "a/1.wav", "conversations": [{"from": "human", "value": "<image>\\nWhat
digit is this?"}, {"from": "gpt", "value": "A seven."}, ...]}``. ``read_table`` turns every answer
(``gpt`` / ``assistant`` turn) into one training row: the object's other fields (the media), ``prompt``
(the turns before the answer, as the JSON list of ``{"role", "content"}`` messages that ``lm_prompt``
renders with the language model's chat template) and ``answer``; ``conversation`` and ``turn`` say where
the row came from. Placeholders (``<image>``, ``<audio>``, ``<video>``) say that a medium goes with the
conversation; the media are read into the prefix before the prompt, so they are checked (a placeholder
needs its medium, a medium needs its placeholder) and left out of the text.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pandas as pd

from omnifuse.errors import DataError

CONVERSATIONS = "conversations"
PROMPT, ANSWER = "prompt", "answer"
ORIGIN = ("conversation", "turn")  # the JSONL line and the answer's turn in it
ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}
PLACEHOLDER = re.compile(r"<(image|audio|video)>")
FIX = "fix the conversation: turns alternate human -> gpt (a system turn may come first), as LLaVA's data"


def is_conversation_table(frame: pd.DataFrame) -> bool:
    """Whether a JSONL table holds LLaVA conversations (a ``conversations`` field of lists)."""
    return CONVERSATIONS in frame and any(isinstance(v, list) for v in frame[CONVERSATIONS])


def flatten_conversations(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """One row per answer of every conversation (see the module docstring), in file order.

    Raises:
        DataError: a malformed turn, turns that do not alternate, a placeholder without its medium or a
            medium without its placeholder; the message names the line and the fix.
    """
    media = [c for c in frame.columns if c != CONVERSATIONS]
    rows: list[dict[str, Any]] = []
    for number, record in enumerate(frame.to_dict(orient="records"), start=1):
        where = f"table {source!r} line {number}"
        messages = _messages(record.get(CONVERSATIONS), where)
        _check_placeholders(messages, record, where)
        for turn, message in enumerate(messages):
            if message["role"] != "assistant":
                continue
            history = [{"role": m["role"], "content": strip_placeholders(m["content"])}
                       for m in messages[:turn]]
            prompt = json.dumps(history, ensure_ascii=False)
            rows.append({**{c: record.get(c) for c in media}, PROMPT: prompt, ANSWER: message["content"],
                         ORIGIN[0]: number, ORIGIN[1]: turn})
    return pd.DataFrame(rows, columns=[*media, PROMPT, ANSWER, *ORIGIN])


def strip_placeholders(text: str) -> str:
    """The text without media placeholders (and the blank lines they leave)."""
    return PLACEHOLDER.sub("", text).strip()


def _messages(turns: Any, where: str) -> list[dict[str, str]]:
    """The turns as ``{"role", "content"}``, checked to alternate user -> assistant."""
    if not isinstance(turns, list) or not turns:
        raise DataError(f"{where}: 'conversations' must be a non-empty list of turns; {FIX}")
    messages = []
    for i, turn in enumerate(turns):
        role = ROLES.get(str(turn.get("from", turn.get("role", "")))) if isinstance(turn, dict) else None
        content = turn.get("value", turn.get("content")) if isinstance(turn, dict) else None
        if role is None or not isinstance(content, str):
            raise DataError(f"{where}: turn {i} is {turn!r}; each turn needs 'from' (human, gpt or system) "
                            f"and a text 'value'; {FIX}")
        messages.append({"role": role, "content": content})
    roles = [m["role"] for m in messages if m["role"] != "system" or m is not messages[0]]
    expected = ["user" if i % 2 == 0 else "assistant" for i in range(len(roles))]
    if roles != expected or roles[-1] != "assistant":
        raise DataError(f"{where}: the turns go {' -> '.join(roles)}, which does not alternate human -> gpt "
                        f"ending with a gpt answer; {FIX}")
    return messages


def _check_placeholders(messages: list[dict[str, str]], record: dict[Any, Any], where: str) -> None:
    """Every placeholder has its medium in the line, and every medium its placeholder."""
    named = {m.group(1) for message in messages for m in PLACEHOLDER.finditer(message["content"])}
    given = {kind for kind in ("image", "audio", "video") if _filled(record.get(kind))}
    for kind in sorted(named - given):
        raise DataError(f"{where}: the conversation has a <{kind}> placeholder but the line has no "
                        f"'{kind}' file; add \"{kind}\": \"path\" to the line or remove the placeholder")
    for kind in sorted(given - named):
        raise DataError(f"{where}: the line has a '{kind}' file but no turn says where it goes; add a "
                        f"<{kind}> placeholder to the first human turn (e.g. \"<{kind}>\\nWhat is this?\")")


def _filled(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())

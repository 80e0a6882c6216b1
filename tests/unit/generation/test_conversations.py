"""LLaVA conversations read as rows (one per answer), their checks, and the prompt they render to."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from omnifuse.data.io import read_table
from omnifuse.errors import DataError
from omnifuse.generation.chat import ChatSession
from omnifuse.generation.prompt import chat_messages, render_prompt


def _write(path: Path, *records: dict) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def _turns(*values: str) -> list[dict[str, str]]:
    return [{"from": "human" if i % 2 == 0 else "gpt", "value": v} for i, v in enumerate(values)]


def test_every_answer_is_a_row_with_the_history_before_it(tmp_path: Path) -> None:
    first = _turns("<image>\nWhat digit?", "A seven.", "Odd?", "Yes.")
    path = _write(tmp_path / "c.jsonl", {"image": "a.png", "conversations": first},
                  {"image": "b.png", "conversations": [{"from": "system", "value": "Be brief."},
                                                       *_turns("<image>\nDigit?", "3")]})
    frame = read_table(path).frame
    assert list(frame.columns) == ["image", "prompt", "answer", "conversation", "turn"]
    assert frame["answer"].tolist() == ["A seven.", "Yes.", "3"]
    assert frame["conversation"].tolist() == [1, 1, 2] and frame["turn"].tolist() == [1, 3, 2]
    second = json.loads(frame["prompt"][1])
    assert second == [{"role": "user", "content": "What digit?"},
                      {"role": "assistant", "content": "A seven."},
                      {"role": "user", "content": "Odd?"}]  # placeholders out of the text
    assert json.loads(frame["prompt"][2])[0] == {"role": "system", "content": "Be brief."}


@pytest.mark.parametrize(("record", "message"), [
    ({"image": "a.png", "conversations": _turns("<image>\nHi", "Hello", "More")}, "ending with a gpt answer"),
    ({"image": "a.png", "conversations": [{"from": "gpt", "value": "x"}]}, "does not alternate"),
    ({"conversations": _turns("<image>\nWhat?", "A cat.")}, "<image> placeholder but the line has no"),
    ({"audio": "a.wav", "conversations": _turns("What?", "A cat.")}, "add a <audio> placeholder"),
    ({"image": "a.png", "conversations": [{"from": "bot", "value": "x"}]}, "turn 0 is"),
    ({"image": "a.png", "conversations": []}, "non-empty list"),
])
def test_malformed_conversations_name_the_line_and_the_fix(
    tmp_path: Path, record: dict, message: str,
) -> None:
    good = {"image": "ok.png", "conversations": _turns("<image>\nA?", "B")}
    path = _write(tmp_path / "c.jsonl", good, record)
    with pytest.raises(DataError, match="line 2") as err:
        read_table(path)
    assert message in str(err.value)


def test_a_prompt_renders_through_the_chat_template_or_as_plain_turns() -> None:
    messages = [{"role": "user", "content": "What digit?"}]
    cell = json.dumps(messages)
    assert chat_messages(cell) == messages and chat_messages("What digit?") is None
    assert render_prompt(cell, None) == "user: What digit?\nassistant:"
    assert render_prompt("plain text", None) == "plain text"

    class Templated:
        chat_template = "{{ messages }}"

        def apply_chat_template(self, messages, add_generation_prompt, tokenize):  # noqa: ANN001, ANN201
            assert add_generation_prompt and not tokenize
            return "<|im_start|>user\nWhat digit?<|im_end|>\n<|im_start|>assistant\n"

    assert render_prompt(cell, Templated()).endswith("<|im_start|>assistant\n")  # type: ignore[arg-type]


def test_a_chat_session_keeps_the_history_and_forgets_a_failed_turn(tmp_path: Path) -> None:
    seen: list[list[dict[str, str]]] = []

    def reply(history: list[dict[str, str]], media: dict) -> str:
        seen.append(list(history))
        if history[-1]["content"] == "fail":
            raise DataError("no")
        return f"answer {len(history)}"

    session = ChatSession(reply)
    assert session.ask("one") == "answer 1" and session.ask("two") == "answer 3"
    with pytest.raises(DataError):
        session.ask("fail")
    assert [m["content"] for m in session.history] == ["one", "answer 1", "two", "answer 3"]
    with pytest.raises(DataError, match="no such file"):
        session.attach("image", tmp_path / "missing.png")
    session.reset()
    assert session.history == [] and session.media == {}

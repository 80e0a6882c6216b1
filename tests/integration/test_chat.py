"""Conversations end to end: init-config on a LLaVA JSONL table, train, Predictor.chat (multi-turn, media
attached), and the terminal chat."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import omnifuse
from omnifuse.cli import app
from omnifuse.config.sections import Config
from omnifuse.errors import DataError

from .conftest import make_table

runner = CliRunner()


def _conversations(folder: Path, n: int, seed: int, name: str) -> Path:
    frame = make_table(folder, n, seed)
    lines = []
    for photo, animal in zip(frame["photo"], frame["animal"], strict=True):
        turns = [{"from": "human", "value": "<image>\nWhat animal is this?"},
                 {"from": "gpt", "value": animal},
                 {"from": "human", "value": "Say it again."}, {"from": "gpt", "value": f"a {animal} ."}]
        lines.append(json.dumps({"image": photo, "conversations": turns}) + "\n")
    (folder / name).write_text("".join(lines))
    return folder / name


@pytest.fixture(scope="module")
def chat_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("chat")
    train = _conversations(folder, 32, 0, "train.jsonl")
    _conversations(folder, 8, 1, "valid.jsonl")
    result = runner.invoke(app, ["init-config", "--train", str(train), "--task", "generation",
                                 "--out", str(folder / "c.yaml")])
    assert result.exit_code == 0, result.output
    config = Config.from_yaml(folder / "c.yaml")
    assert config.label.column == "answer" and config.encoder_of("prompt").name == "lm_prompt"
    assert config.columns["conversation"].type == config.columns["turn"].type == "ignore"
    text = (folder / "c.yaml").read_text().replace("epochs: 100", "epochs: 30")  # enough to write words
    (folder / "c.yaml").write_text(text)
    omnifuse.train(folder / "c.yaml", train, valid=folder / "valid.jsonl", out=folder / "m", progress=False)
    return folder


def test_chat_answers_a_multi_turn_history_with_an_image(chat_model: Path) -> None:
    predictor = omnifuse.load(chat_model / "m")
    image = str(chat_model / "img" / sorted(p.name for p in (chat_model / "img").iterdir())[0])
    first = predictor.chat([{"role": "user", "content": "<image>\nWhat animal is this?"}], {"image": image})
    assert isinstance(first, str) and first  # it writes something (a tested answer is not an empty one)
    history = [{"role": "user", "content": "What animal is this?"}, {"role": "assistant", "content": first},
               {"role": "user", "content": "Say it again."}]
    again = predictor.chat(history, {"image": image})
    assert again and again == predictor.chat(history, {"image": image})  # greedy
    with pytest.raises(DataError, match="last message must be the user's"):
        predictor.chat(history[:2], {"image": image})
    with pytest.raises(DataError, match="reads no 'audio' medium"):
        predictor.chat(history, {"audio": image})


def test_the_terminal_chat_keeps_the_history_and_takes_commands(chat_model: Path) -> None:
    image = next((chat_model / "img").iterdir())
    lines = "\n".join([f"/image {image}", "What animal is this?", "Say it again.", "/reset", "/nope",
                       "/image /no/such/file.png", "/quit"]) + "\n"
    result = runner.invoke(app, ["chat", "--model", str(chat_model / "m")], input=lines)
    assert result.exit_code == 0, result.output
    assert result.output.count("model> ") == 2
    assert "attached" in result.output and "forgotten" in result.output and "/reset" in result.output
    assert "no such file" in result.output


def test_chat_needs_a_prompt_column(tmp_path: Path) -> None:
    from omnifuse.generation.chat import prompt_column

    config = Config.from_dict({"label": {"column": "c", "task": "generation"},
                               "columns": {"photo": {"type": "image"}}})
    with pytest.raises(DataError, match="one prompt column"):
        prompt_column(config)

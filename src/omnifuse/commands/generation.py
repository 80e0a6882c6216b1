"""CLI commands: ``omnifuse generate`` (the text a generation model writes for every row of a table) and
``omnifuse chat`` (an interactive terminal chat with a model trained on conversations)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from omnifuse.generation.chat import ChatSession


def generate(
    model: Annotated[Path, typer.Option("--model", "-m", help="A trained generation model folder.")],
    data: Annotated[Path, typer.Option("--data", "-d", help="Table of inputs: CSV, TSV, Parquet or JSONL.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="CSV to write.")] = Path("generated.csv"),
    max_new_tokens: Annotated[int | None, typer.Option(
        min=1, help="Most tokens written per row (default: the config's generation.max_new_tokens).")] = None,
    num_beams: Annotated[int | None, typer.Option(min=1, help="Beam search width (1: greedy).")] = None,
    temperature: Annotated[float, typer.Option(min=0.0, help="> 0 samples at this temperature.")] = 0.0,
    top_p: Annotated[float, typer.Option(min=0.0, max=1.0, help="Sampling: nucleus probability.")] = 1.0,
    seed: Annotated[int | None, typer.Option(help="Sampling: the same seed writes the same text.")] = None,
) -> None:
    """Write a text for every row of a table with a generation model: one output row per input row, in
    order, in the column ``generated``."""
    import pandas as pd

    from omnifuse.cli import console
    from omnifuse.inference.predictor import load

    texts = load(model).generate(data, max_new_tokens=max_new_tokens, num_beams=num_beams,
                                 temperature=temperature, top_p=top_p, seed=seed)
    pd.DataFrame({"generated": texts}).to_csv(out, index=False)
    console.print(f"[green]Wrote {len(texts)} generated text(s) to {out}[/green]")


CHAT_HELP = "/image PATH, /audio PATH: attach a file; /reset: forget the chat; /quit: leave"


def chat(
    model: Annotated[Path, typer.Option("--model", "-m", help="A generation model with a prompt column.")],
    image: Annotated[Path | None, typer.Option(help="An image to attach from the start.")] = None,
    audio: Annotated[Path | None, typer.Option(help="An audio file to attach from the start.")] = None,
    max_new_tokens: Annotated[int | None, typer.Option(min=1, help="Most tokens per answer.")] = None,
    temperature: Annotated[float, typer.Option(min=0.0, help="> 0 samples at this temperature.")] = 0.0,
    seed: Annotated[int | None, typer.Option(help="Sampling: the same seed writes the same text.")] = None,
) -> None:
    """Chat in the terminal with a generation model trained on conversations: the history is kept (the
    model reads it through its chat template), and media can be attached at any turn."""
    from omnifuse.cli import console
    from omnifuse.errors import OmnifuseError
    from omnifuse.generation.chat import ChatSession, prompt_column
    from omnifuse.inference.predictor import load

    predictor = load(model)
    prompt_column(predictor.config)  # a clear error before the first question when there is none

    def reply(history: list[dict[str, str]], media: dict[str, object]) -> Iterator[str]:
        return predictor.chat(history, media, max_new_tokens=max_new_tokens, temperature=temperature,
                              seed=seed, stream=True)  # type: ignore[no-any-return]

    session = ChatSession(reply)
    for kind, path in (("image", image), ("audio", audio)):
        if path is not None:
            session.attach(kind, path)
    console.print(f"Chat with {model} ({CHAT_HELP}).")
    while True:
        try:
            line = input("you> ").strip()
        except EOFError:
            return
        if line in ("/quit", "/exit"):
            return
        try:
            _chat_turn(session, line, lambda text: console.print(text, end="", markup=False,
                                                                   highlight=False))
        except OmnifuseError as exc:
            console.print(f"\n[red]{exc}[/red]")


def _chat_turn(session: ChatSession, line: str, show: Callable[[str], None]) -> None:
    """Handles one line the user typed: a command, or a question whose answer is shown as it comes."""
    command, _, rest = line.partition(" ")
    notice = _command(session, command, rest.strip(), line)
    if notice is not None:
        show(notice + "\n")
        return
    show("model> ")
    session.ask(line, show)
    show("\n")


def _command(session: ChatSession, command: str, rest: str, line: str) -> str | None:
    """What a chat command answers (None: the line is a question)."""
    if command in ("/image", "/audio"):
        session.attach(command[1:], Path(rest).expanduser())
        return f"(attached {rest} as the {command[1:]})"
    if command == "/reset":
        session.reset()
        return "(the chat and its media are forgotten)"
    if command.startswith("/") or not line:
        return f"({CHAT_HELP})"
    return None


def register(app: typer.Typer) -> None:
    """Adds this group's commands to ``app``."""
    app.command()(generate)
    app.command()(chat)

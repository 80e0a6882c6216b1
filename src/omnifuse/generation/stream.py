"""Token streaming: the ids a generation model writes for one row, as they are written.

``transformers``' ``generate`` runs on a worker thread and pushes each new token into a queue
(``IdQueue``, its streamer); ``stream_ids`` yields them on the caller's thread. A consumer that stops
early (a stop string, a closed HTTP stream) sets the stop event, which ends ``generate`` at its next
step (``StopOnEvent``), so no thread is left writing for nobody.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch

_END = object()


class IdQueue:
    """A ``generate`` streamer (``put`` / ``end``) that queues the new token ids of a one-row batch."""

    def __init__(self) -> None:
        self.queue: queue.Queue[Any] = queue.Queue()

    def put(self, value: torch.Tensor) -> None:
        for token in value.reshape(-1).tolist():  # the prompt's (1, 0) ids first: nothing
            self.queue.put(int(token))

    def end(self) -> None:
        self.queue.put(_END)


class StopOnEvent:
    """A stopping criterion: True for every row once ``event`` is set."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def __call__(self, input_ids: torch.Tensor, scores: Any, **kwargs: Any) -> torch.Tensor:
        return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool,
                          device=input_ids.device)


def stream_ids(run: Callable[[IdQueue, StopOnEvent], Any]) -> Iterator[int]:
    """The ids ``run(streamer, stopping)`` writes, as they come (``run`` calls ``generate`` with them).

    Closing the iterator early stops the generation; an error in ``run`` is raised here.
    """
    streamer, stop = IdQueue(), threading.Event()
    failed: list[BaseException] = []

    def work() -> None:
        try:
            run(streamer, StopOnEvent(stop))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer's thread
            failed.append(exc)
        finally:
            streamer.end()

    thread = threading.Thread(target=work, name="omnifuse-generate", daemon=True)
    thread.start()
    try:
        while (item := streamer.queue.get()) is not _END:
            yield item
    finally:
        stop.set()
        thread.join()
    if failed:
        raise failed[0]


def text_deltas(ids: Iterator[int], decode: Callable[[list[int]], str],
                end_ids: tuple[int, ...]) -> Iterator[str]:
    """The new text after each token (the whole text decoded each time, so the pieces join into what
    ``decode`` gives for all of them), up to an end token; a piece whose decoding is not settled yet (a
    partial character) waits for the next token."""
    written: list[int] = []
    shown = ""
    for token in ids:
        if token in end_ids:
            break
        written.append(token)
        text = decode(written)
        if text.startswith(shown) and len(text) > len(shown) and not text.endswith("\ufffd"):
            yield text[len(shown):]
            shown = text
    final = decode(written)
    if final.startswith(shown) and final != shown:
        yield final[len(shown):]


def cut_at_stop(text: str, stops: Sequence[str]) -> str:
    """``text`` up to the first of the ``stops`` strings (all of it when none occurs)."""
    ends = [i for i in (text.find(s) for s in stops if s) if i >= 0]
    return text[: min(ends)] if ends else text


def until_stop(pieces: Iterator[str], stops: Sequence[str]) -> Iterator[str]:
    """The pieces up to the first stop string, which may span pieces (the last ``len(stop) - 1``
    characters are held back until they cannot begin one); closes ``pieces`` when a stop is found."""
    stops = [s for s in stops if s]
    if not stops:
        yield from pieces
        return
    hold = max(len(s) for s in stops) - 1
    pending = ""
    try:
        for piece in pieces:
            pending += piece
            cut = cut_at_stop(pending, stops)
            if cut != pending:
                if cut:
                    yield cut
                return
            if len(pending) > hold:
                yield pending[: len(pending) - hold]
                pending = pending[len(pending) - hold:]
        if pending:
            yield pending
    finally:
        close = getattr(pieces, "close", None)
        if close is not None:
            close()

"""Graceful Ctrl-C for training: the first SIGINT asks the loop to stop after the current optimizer
step, a second one aborts at once."""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType
from typing import Any

from omnifuse.errors import OmnifuseError


class TrainingInterrupted(OmnifuseError):
    """Training stopped on Ctrl-C; the message says how to resume."""


class GracefulInterrupt:
    """Context manager that turns the first SIGINT into a flag (``requested``) and the second into
    ``KeyboardInterrupt``; the previous handler is restored on exit.

    Outside the main thread (where Python does not allow signal handlers) it does nothing and
    ``requested`` stays False.

    Args:
        notify: called once, with no arguments, when the first SIGINT arrives (e.g. to print a note).
    """

    def __init__(self, notify: Any = None) -> None:
        self.requested = False
        self.notify = notify
        self._previous: Any = None
        self._installed = False

    def __enter__(self) -> GracefulInterrupt:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.getsignal(signal.SIGINT)
            signal.signal(signal.SIGINT, self._handle)
            self._installed = True
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
            self._installed = False

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:  # the second Ctrl-C: stop now
            raise KeyboardInterrupt
        self.requested = True
        if self.notify is not None:
            self.notify()

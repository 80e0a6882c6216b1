"""One small registry for the parts users pick by name in YAML (encoders, fusions, heads)."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Generic, TypeVar

from omnifuse.errors import UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps user-facing names to entries; unknown names list the available choices.

    Args:
        kind: what the registry holds, used in error messages ("encoder", "fusion", ...).
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator that registers an entry under ``name``."""

        def add(entry: T) -> T:
            self.add(name, entry)
            return entry

        return add

    def add(self, name: str, entry: T) -> None:
        """Registers ``entry`` under ``name``; a second entry under the same name is a bug."""
        if name in self._entries:
            raise KeyError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = entry

    def get(self, name: str) -> T:
        """Returns the entry named ``name``.

        Raises:
            UnknownNameError: the name is unknown (a KeyError); the message lists the choices.
        """
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(unknown_name_message(self.kind, name, self.names())) from None

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries


def unknown_name_message(kind: str, name: str, choices: list[str]) -> str:
    """An error message for an unknown name, with a did-you-mean and the list of choices."""
    close = difflib.get_close_matches(name, choices, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return f"unknown {kind} {name!r}.{hint} Available: {', '.join(choices)}"

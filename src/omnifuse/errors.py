"""Exceptions raised for bad user input. Each message names the value, what was expected and the fix."""

from __future__ import annotations


class OmnifuseError(Exception):
    """Base class of every user-facing error omnifuse raises on purpose."""


class ConfigError(OmnifuseError, ValueError):
    """The configuration is invalid; the message lists every problem at once."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        body = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid configuration ({len(problems)} problem(s)):\n{body}")


class OptionError(OmnifuseError, ValueError):
    """A component (fusion, head, layer) was built with an option it cannot take. Configs are range-checked
    when they are loaded, so this reaches users who build components from Python, or a combination of
    options only the builder can judge."""


class BadValueError(OmnifuseError, ValueError):
    """One cell could not be turned into model input. Raised by preprocessors, without the row.

    Args:
        reason: what is wrong with the value, e.g. "cannot decode 'a.png' (not an image file)".
        fix: what the user can do about it.
        column: the table column, when a preprocessor reads several (the tabular input).
        value: the offending cell, when ``column`` is given.
    """

    def __init__(self, reason: str, fix: str = "", column: str | None = None, value: object = None) -> None:
        self.reason = reason
        self.fix = fix
        self.column = column
        self.value = value
        super().__init__(f"{reason}; {fix}" if fix else reason)


class BadRowError(OmnifuseError, ValueError):
    """A row of the table is unusable; names the row, the column and the fix."""

    def __init__(self, row: int, column: str, reason: str, fix: str) -> None:
        self.row = row
        self.column = column
        self.reason = reason
        self.fix = fix
        super().__init__(f"column {column!r} row {row}: {reason}; {fix}")


class DataError(OmnifuseError, ValueError):
    """The table as a whole is unusable (missing column, too few classes, empty table, ...)."""


class ModelDirError(OmnifuseError, ValueError):
    """A saved model folder is incomplete, tampered with or from an incompatible version."""


class UnknownNameError(OmnifuseError, KeyError):
    """A name picked from a registry does not exist; the message lists the choices."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class SetupError(OmnifuseError, RuntimeError):
    """Something omnifuse needs from the machine is missing or broken (a Debian package, a bundled data
    file, a program on PATH); the message names the command that installs it."""


class MissingExtraError(OmnifuseError, ImportError):
    """An optional dependency (a pip extra such as ``omnifuse[export]``) is not installed; the message
    names the command that installs it."""


class PretrainedLoadError(OmnifuseError, OSError):
    """A pretrained model or tokenizer named in the config cannot be loaded (no such folder, no network
    for a hub name); the message names the source and what to give instead."""


class CheckpointError(OmnifuseError, OSError):
    """The output folder cannot hold a checkpoint (not writable, or not enough free space)."""


class ExportError(OmnifuseError, RuntimeError):
    """A model (or one of its parts) cannot be exported, or the export does not match torch."""


class TuneError(OmnifuseError):
    """A study could not run or produced nothing usable; the message says why and what to do."""


class PeerFailedError(OmnifuseError):
    """Another DDP rank stopped on an error, so this one stopped too; the message is that rank's error.

    Args:
        message: names the rank and its error.
        bug: the other rank's error was not an OmnifuseError (a bug: the CLI exits with status 1).
    """

    def __init__(self, message: str, bug: bool = False) -> None:
        self.bug = bug
        super().__init__(message)

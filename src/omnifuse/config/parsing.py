"""Turns plain dicts (from YAML) into typed dataclasses, collecting every problem with its path."""

from __future__ import annotations

import copy
import dataclasses
import difflib
import re
import types
import typing
from typing import Any, TypeVar, Union, get_args, get_origin

from omnifuse.errors import ConfigError

T = TypeVar("T")
RANGE = "omnifuse_range"  # dataclass field metadata key: the field's allowed values (see ``bounded``)
_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def from_dict(cls: type[T], data: Any, path: str, problems: list[str]) -> T:
    """Builds dataclass ``cls`` from ``data``; appends a message to ``problems`` for each bad field.

    Unknown keys get a did-you-mean; missing required fields and wrong types are reported with
    their dotted path (e.g. ``training.lr``). Fields that fail keep their default so that parsing
    goes on and every problem is found in one pass.
    """
    if data is None:
        data = {}
    if not isinstance(data, dict):
        problems.append(f"{path or 'config'}: expected a mapping, got {type(data).__name__} {data!r}")
        data = {}
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]  # init=False: derived
    for key in data:
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            problems.append(f"{_join(path, str(key))}: unknown key.{hint} Known keys: {', '.join(fields)}")
    kwargs: dict[str, Any] = {}
    for name, field in fields.items():
        if name in data:
            before = len(problems)
            kwargs[name] = convert(hints[name], data[name], _join(path, name), problems)
            if RANGE in field.metadata and len(problems) == before:  # a range is checked on a typed value
                check: Range = field.metadata[RANGE]
                problems += check.problems(kwargs[name], _join(path, name), field_default(field))
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            problems.append(f"{_join(path, name)}: required key is missing")
            kwargs[name] = None
    return cls(**kwargs)


@dataclasses.dataclass(frozen=True)
class ParsedOptions:
    """A component's options parsed into their dataclass, once, at load (``config.binding``): the typed
    value, the problems found and a copy of the mapping they were read from (to tell a stale parse)."""

    cls: type
    raw: Any  # a deep copy of the mapping that was parsed
    value: Any  # an instance of ``cls`` (fields that failed keep their defaults)
    problems: tuple[str, ...]


def parse_options(cls: type, raw: Any, path: str) -> ParsedOptions:
    """``raw`` parsed into dataclass ``cls``, with the range checks; problems are collected, not raised."""
    problems: list[str] = []
    value: Any = from_dict(cls, raw, path, problems)
    return ParsedOptions(cls, copy.deepcopy(raw), value, tuple(problems))


def parsed_or_now(parsed: ParsedOptions | None, cls: type, raw: Any, path: str) -> ParsedOptions:
    """``parsed`` when it was made from ``raw`` as ``cls``; else ``raw`` parsed now (a config built in code,
    or options changed after load)."""
    if parsed is not None and parsed.cls is cls and parsed.raw == raw:
        return parsed
    return parse_options(cls, raw, path)


def typed_options(parsed: ParsedOptions | None, cls: type, raw: Any, path: str) -> Any:
    """The typed options (see ``parsed_or_now``).

    Raises:
        ConfigError: they have problems (normally reported when the config was loaded).
    """
    found = parsed_or_now(parsed, cls, raw, path)
    if found.problems:
        raise ConfigError(list(found.problems))
    return found.value


@dataclasses.dataclass(frozen=True)
class Range:
    """Allowed numbers: ``low <= v``, and ``v <= high`` or ``v < below``; lists are checked item by item."""

    low: float | None = None
    high: float | None = None
    below: float | None = None
    hint: str = ""  # what the values mean or a good value, e.g. "0 disables it"

    def problems(self, value: Any, path: str, default: Any = None) -> list[str]:
        """One message per value out of range (none for a value that is not a number), with the fix."""
        if isinstance(value, (list, tuple)):
            return [p for i, v in enumerate(value) for p in self.problems(v, f"{path}[{i}]", default)]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return []
        inside = (self.low is None or value >= self.low) and (self.high is None or value <= self.high) and (
            self.below is None or value < self.below)
        if inside:
            return []
        hint = f" ({self.hint})" if self.hint else ""
        fix = "" if default is None else f"; set e.g. the default, {default!r}"
        return [f"{path}: {value!r} is out of range: it must be {self.describe()}{hint}{fix}"]

    def describe(self) -> str:
        """The range in words, e.g. ``in [0, 1)`` or ``>= 1``."""
        top = ""
        if self.high is not None or self.below is not None:
            top = f"{self.high:g}]" if self.high is not None else f"{self.below:g})"
        if self.low is not None and top:
            return f"in [{self.low:g}, {top}"
        if self.low is not None:
            return f">= {self.low:g}"
        return f"<= {self.high:g}" if self.high is not None else f"< {self.below:g}"


def bounded(default: Any, *, low: float | None = None, high: float | None = None, below: float | None = None,
            hint: str = "") -> Any:
    """A dataclass field whose value ``from_dict`` checks against a range, e.g. ``dim: int = bounded(128,
    low=1)``; a list default (``widths``) is copied per instance and checked item by item."""
    check = Range(low, high, below, hint)
    if isinstance(default, list):
        return dataclasses.field(default_factory=lambda: list(default), metadata={RANGE: check})
    return dataclasses.field(default=default, metadata={RANGE: check})


def positive(default: int | list[int] | tuple[int, ...], hint: str = "") -> Any:
    """An integer field (or a list of them, each) that must be at least 1."""
    return bounded(default, low=1, hint=hint)


def non_negative(default: int) -> Any:
    """An integer field that must be at least 0 (0 usually turns the part off)."""
    return bounded(default, low=0)


def fraction(default: float, hint: str = "0 turns it off") -> Any:
    """A probability-like field in [0, 1), e.g. a dropout rate."""
    return bounded(default, low=0, below=1, hint=hint)


def convert(tp: Any, value: Any, path: str, problems: list[str]) -> Any:
    """Checks and converts one value to type ``tp`` (dataclass, list, dict, Literal, Optional, scalar)."""
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        return _convert_union(tp, value, path, problems)
    if origin is typing.Literal:
        if value not in get_args(tp):
            choices = ", ".join(repr(a) for a in get_args(tp))
            problems.append(f"{path}: {value!r} is not one of {choices}")
        return value
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, path, problems)  # type: ignore[arg-type]
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            problems.append(f"{path}: expected a list, got {value!r}")
            return []
        (item_tp, *_) = get_args(tp) or (Any,)
        return [convert(item_tp, v, f"{path}[{i}]", problems) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            problems.append(f"{path}: expected a mapping, got {value!r}")
            return {}
        _, val_tp = get_args(tp) or (Any, Any)
        return {k: convert(val_tp, v, _join(path, str(k)), problems) for k, v in value.items()}
    return _convert_scalar(tp, value, path, problems)


def _convert_union(tp: Any, value: Any, path: str, problems: list[str]) -> Any:
    args = get_args(tp)
    if value is None and type(None) in args:
        return None
    real = [a for a in args if a is not type(None)]
    if len(real) == 1:  # Optional[X]: report X's own problems with their real paths
        return convert(real[0], value, path, problems)
    for arg in args:
        if arg is type(None):
            continue
        trial: list[str] = []
        out = convert(arg, value, path, trial)
        if not trial:
            return out
    names = " or ".join(getattr(a, "__name__", str(a)) for a in args)
    problems.append(f"{path}: expected {names}, got {value!r}")
    return value


def _convert_scalar(tp: Any, value: Any, path: str, problems: list[str]) -> Any:
    if tp is Any:
        return value
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str) and _FLOAT.fullmatch(value.strip()):
        return float(value)  # YAML 1.1 reads 1e-3 (no dot) as a string
    if tp is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if tp is bool and isinstance(value, bool):
        return value
    if tp is str and isinstance(value, str):
        return value
    if tp not in (int, float, bool, str):
        return value
    problems.append(f"{path}: expected {tp.__name__}, got {type(value).__name__} {value!r}")
    return value


def to_dict(obj: Any) -> Any:
    """Plain-value copy of a (nested) dataclass, for YAML/JSON."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.init}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def field_default(field: dataclasses.Field[Any]) -> Any:
    """A field's default value (None when it has none)."""
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key

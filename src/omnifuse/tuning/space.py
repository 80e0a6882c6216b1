"""The search space of ``omnifuse tune``: the config's ``search:`` section, parsed and checked.

    search:
      training.lr: {loguniform: [1e-4, 1e-2]}
      fusion.name: {choice: [concat, attention]}
      columns.audio.encoder.channels: {int: [16, 64]}
      head.dropout: {uniform: [0, 0.3]}

A key is a dotted path into the flat YAML form of the config (``Config.to_dict()``). An option of a
component (a column's encoder, ``fusion``, ``tabular``) may be searched where the config leaves it at its
default, and, when the component's ``name`` is searched too, an option of any of the named candidates.

This module knows no Config: callers pass the flat dict and ``keys_of``, a lookup of a component's keys.
That keeps config validation, which calls ``search_problems``, free of an import cycle.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from omnifuse.registry import unknown_name_message

DISTRIBUTIONS = ("loguniform", "uniform", "int", "choice")
# keys a study cannot vary, and why
FIXED_KEYS = {
    "search": "it is the search space itself",
    "label": "it changes what is predicted",
    "training.monitor": "it changes what the study optimises",
}
# (component kind "encoder" | "fusion", registered name) -> {every key its flat mapping takes: default},
# or None for an unknown name
KeysOf = Callable[[str, str], dict[str, Any] | None]

_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")  # YAML 1.1 reads 1e-4 (no dot) as text
_MISSING = object()


@dataclass(frozen=True)
class Param:
    """One searched config key and its distribution.

    Attributes:
        key: the dotted config key, e.g. ``training.lr``.
        kind: ``loguniform``, ``uniform``, ``int`` or ``choice``.
        low / high: the range's bounds (inclusive) for the numeric kinds.
        choices: the values of a ``choice``.
    """

    key: str
    kind: str
    low: float = 0.0
    high: float = 0.0
    choices: tuple[Any, ...] = ()

    def labels(self) -> list[Any]:
        """The choices as Optuna stores them: scalars as they are, lists and mappings as JSON text."""
        return [choice_label(c) for c in self.choices]

    def suggest(self, trial: Any) -> Any:
        """Draws this key's config value from an Optuna trial (``trial.suggest_*``)."""
        if self.kind == "choice":
            return self.decode(trial.suggest_categorical(self.key, self.labels()))
        if self.kind == "int":
            return trial.suggest_int(self.key, int(self.low), int(self.high))
        return trial.suggest_float(self.key, float(self.low), float(self.high), log=self.kind == "loguniform")

    def decode(self, stored: Any) -> Any:
        """The config value of a parameter as Optuna stored it (a choice's label back to its value)."""
        for choice in self.choices:
            label = choice_label(choice)
            if type(label) is type(stored) and label == stored:
                return choice
        return stored


def choice_label(value: Any) -> Any:
    """A choice as Optuna can store it: None, bool, int, float and str as they are; others as JSON."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return json.dumps(value, sort_keys=True)


def parse_space(search: dict[str, Any]) -> tuple[list[Param], list[str]]:
    """The searched keys, in the order written, and every problem of their distributions.

    Returns:
        (the parameters that parsed, one message per problem naming ``search.<key>`` and the fix).
    """
    params: list[Param] = []
    problems: list[str] = []
    for key, spec in search.items():
        param, problem = _parse_one(str(key), spec)
        if param is not None:
            params.append(param)
        if problem:
            problems.append(problem)
    return params, problems


def _parse_one(key: str, spec: Any) -> tuple[Param | None, str]:
    path = f"search.{key}"
    if not isinstance(spec, dict) or len(spec) != 1:
        got = f"the keys {sorted(map(str, spec))}" if isinstance(spec, dict) else repr(spec)
        return None, (f"{path}: give exactly one distribution ({', '.join(DISTRIBUTIONS)}), e.g. "
                      f"{{loguniform: [1e-4, 1e-2]}} or {{choice: [a, b]}}; got {got}")
    ((kind, value),) = spec.items()
    if kind not in DISTRIBUTIONS:
        return None, f"{path}: {unknown_name_message('distribution', str(kind), list(DISTRIBUTIONS))}"
    if kind == "choice":
        return _parse_choice(path, key, value)
    return _parse_range(path, key, str(kind), value)


def _parse_choice(path: str, key: str, value: Any) -> tuple[Param | None, str]:
    if not isinstance(value, list) or not value:
        return None, (f"{path}: choice needs a non-empty list of values, e.g. "
                      f"{{choice: [concat, attention]}}; got {value!r}")
    labels = [choice_label(v) for v in value]
    if len({json.dumps(v, sort_keys=True) for v in labels}) != len(labels):
        return None, f"{path}: choice lists a value twice ({value!r}); list each value once"
    return Param(key, "choice", choices=tuple(value)), ""


def _parse_range(path: str, key: str, kind: str, value: Any) -> tuple[Param | None, str]:
    bounds = [_number(v) for v in value] if isinstance(value, list) else []
    if len(bounds) != 2 or any(b is None for b in bounds):
        return None, f"{path}: {kind} needs [low, high] (two numbers), e.g. {{{kind}: [1, 10]}}; " \
                     f"got {value!r}"
    low, high = bounds
    assert low is not None and high is not None
    if kind == "int" and not all(float(b).is_integer() for b in (low, high)):
        return None, f"{path}: int needs whole-number bounds, got [{low}, {high}]; use uniform for decimals"
    if low >= high:
        return None, f"{path}: low {low:g} must be below high {high:g}; write [{high:g}, {low:g}]"
    if kind == "loguniform" and low <= 0:
        return None, (f"{path}: loguniform needs low > 0 (got {low:g}); start the range at a small positive "
                      "value such as 1e-5, or use uniform for a range that starts at 0")
    if kind == "int":
        return Param(key, kind, int(low), int(high)), ""
    return Param(key, kind, low, high), ""


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str) and _FLOAT.fullmatch(value.strip()):
        return float(value)
    return None


# -- keys ---------------------------------------------------------------------------------------------

def locate(flat: dict[str, Any], key: str) -> tuple[list[str], str]:
    """Splits ``key`` into the path of keys it names in ``flat`` and an unmatched rest ("" when it all
    matches). Names that contain dots (a column ``a.b``) match whole: the longest name that fits wins."""
    path: list[str] = []
    node: Any = flat
    rest = key
    while rest and isinstance(node, dict):
        fits = [k for k in node if isinstance(k, str) and (rest == k or rest.startswith(k + "."))]
        if not fits:
            break
        name = max(fits, key=len)
        path.append(name)
        node = node[name]
        rest = rest[len(name) + 1:]
    return path, rest


def component_at(path: list[str]) -> str | None:
    """The kind ("encoder" or "fusion") of the component whose flat mapping is at ``path``, else None."""
    if path == ["fusion"]:
        return "fusion"
    if path == ["tabular"] or (len(path) == 3 and path[0] == "columns" and path[2] == "encoder"):
        return "encoder"
    return None


def get_value(flat: dict[str, Any], path: list[str]) -> Any:
    """The value at ``path`` in ``flat``."""
    node: Any = flat
    for name in path:
        node = node[name]
    return node


def component_names(flat: dict[str, Any], path: list[str], params: list[Param]) -> list[str]:
    """The component's current name, plus every candidate of a searched ``<path>.name`` choice."""
    names = [str(get_value(flat, path).get("name"))]
    dotted = ".".join(path + ["name"])
    for param in params:
        if param.key == dotted and param.kind == "choice":
            names += [str(c) for c in param.choices if str(c) not in names]
    return names


def search_problems(search: dict[str, Any], flat: dict[str, Any], keys_of: KeysOf) -> list[str]:
    """Every problem of a ``search:`` section against the flat config it belongs to.

    Args:
        search: the section, {dotted key: {distribution: bounds or choices}}.
        flat: the config in its flat YAML form (``Config.to_dict()``).
        keys_of: (kind, component name) -> {key: default} of that component's flat mapping, or None.
    Returns:
        One message per problem, each naming ``search.<key>``, what is wrong and the fix.
    """
    if not isinstance(search, dict):
        return [f"search: expected a mapping of dotted config keys to distributions, got {search!r}"]
    params, problems = parse_space(search)
    for param in params:
        problems += _key_problems(param, flat, keys_of, params)
    return problems


def _key_problems(param: Param, flat: dict[str, Any], keys_of: KeysOf, params: list[Param]) -> list[str]:
    where = f"search.{param.key}"
    for fixed, why in FIXED_KEYS.items():
        if param.key == fixed or param.key.startswith(fixed + "."):
            return [f"{where}: {fixed} cannot be searched ({why}); remove this key from search"]
    current = _current_value(param.key, flat, keys_of, params)
    if current is _MISSING:
        close = difflib.get_close_matches(param.key, list(_known_keys(flat, keys_of, [])), n=1, cutoff=0.6)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        return [f"{where}: {param.key!r} is not a key of this config.{hint} Write a dotted key of the flat "
                "YAML form, e.g. training.lr, fusion.name or columns.<column>.encoder.<option>"]
    return _type_problems(where, param, current)


def _current_value(key: str, flat: dict[str, Any], keys_of: KeysOf, params: list[Param]) -> Any:
    """The key's value in ``flat`` (or a component option's default); ``_MISSING`` when there is none.
    An option that only another searched candidate of the component has gives None (type unknown)."""
    path, rest = locate(flat, key)
    if not rest:
        return get_value(flat, path)
    kind = component_at(path)
    if kind is None or "." in rest:
        return _MISSING
    found: Any = _MISSING
    for position, name in enumerate(component_names(flat, path, params)):
        keys = keys_of(kind, name) or {}
        if rest in keys:
            if position == 0:
                return keys[rest]
            found = None
    return found


def _known_keys(node: dict[str, Any], keys_of: KeysOf, path: list[str]) -> Iterator[str]:
    """Every dotted key below ``node`` (at ``path`` in the flat config), with components' options."""
    kind = component_at(path)
    if kind is not None:
        yield from (".".join([*path, k]) for k in keys_of(kind, str(node.get("name"))) or {})
    for name, value in node.items():
        if isinstance(value, dict) and value:
            yield from _known_keys(value, keys_of, [*path, str(name)])
        else:
            yield ".".join([*path, str(name)])


def _type_problems(where: str, param: Param, current: Any) -> list[str]:
    """A numeric range over a key that holds a section, text, a flag or a list, or a float range over a
    whole number: every trial's config would be refused."""
    if param.kind == "choice" or current is None:
        return []
    if isinstance(current, dict):
        return [f"{where}: is a section, not a value; search one of its keys, e.g. "
                f"{param.key}.{next(iter(current), 'name')}"]
    if isinstance(current, (bool, str, list)):
        shown = json.dumps(current)
        return [f"{where}: holds {type(current).__name__} {shown}, not a number; use choice: [...] with "
                "the values to try"]
    if isinstance(current, int) and param.kind != "int":
        return [f"{where}: holds a whole number ({current}); use int: [{param.low:g}, {param.high:g}] "
                "(or choice)"]
    return []

"""Unit tests of the dict -> typed dataclass conversion."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import pytest

from omnifuse.config.parsing import bounded, convert, fraction, from_dict, non_negative, positive, to_dict


@dataclass
class Inner:
    """A nested section."""

    size: int = 4
    mode: Literal["a", "b"] = "a"


@dataclass
class Outer:
    """A top-level section with every supported field kind."""

    name: str
    rate: float = 0.5
    flag: bool = False
    tags: list[str] = field(default_factory=list)
    widths: tuple[int, ...] = (1, 2)
    inner: Inner = field(default_factory=Inner)
    named: dict[str, Inner] = field(default_factory=dict)
    maybe: int | None = None
    either: int | str = 1
    anything: Any = None


def _parse(data: Any) -> tuple[Outer, list[str]]:
    problems: list[str] = []
    return from_dict(Outer, data, "", problems), problems


def test_full_parse() -> None:
    out, problems = _parse(
        {
            "name": "x",
            "rate": 2,
            "flag": True,
            "tags": ["p", "q"],
            "widths": [3, 4, 5],
            "inner": {"size": 8, "mode": "b"},
            "named": {"k": {"size": 1}},
            "maybe": 3,
            "either": "all",
            "anything": {"free": [1]},
        }
    )
    assert problems == []
    assert out == Outer(
        name="x",
        rate=2.0,
        flag=True,
        tags=["p", "q"],
        widths=[3, 4, 5],  # type: ignore[arg-type]
        inner=Inner(8, "b"),
        named={"k": Inner(1)},
        maybe=3,
        either="all",
        anything={"free": [1]},
    )
    assert isinstance(out.rate, float)


def test_defaults_fill_missing_optional_fields() -> None:
    out, problems = _parse({"name": "x"})
    assert problems == []
    assert out == Outer(name="x")


def test_none_data_is_empty_mapping() -> None:
    out, problems = _parse(None)
    assert problems == ["name: required key is missing"]
    assert out.name is None


def test_non_mapping_data() -> None:
    _, problems = _parse([1, 2])
    assert problems[0] == "config: expected a mapping, got list [1, 2]"
    problems2: list[str] = []
    from_dict(Inner, "big", "training", problems2)
    assert problems2 == ["training: expected a mapping, got str 'big'"]


def test_unknown_key_did_you_mean_and_known_keys_at_depth() -> None:
    _, problems = _parse({"name": "x", "inner": {"sise": 3}, "rat": 1.0})
    assert len(problems) == 2
    assert problems[0].startswith("rat: unknown key. Did you mean 'rate'? Known keys: name, rate, flag")
    assert problems[1] == "inner.sise: unknown key. Did you mean 'size'? Known keys: size, mode"


def test_unknown_key_without_close_match() -> None:
    _, problems = _parse({"name": "x", "zzzz": 1})
    assert problems == [
        "zzzz: unknown key. Known keys: name, rate, flag, tags, widths, inner, named, maybe, either, anything"
    ]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"rate": "fast"}, "rate: expected float, got str 'fast'"),
        ({"rate": True}, "rate: expected float, got bool True"),
        ({"flag": 1}, "flag: expected bool, got int 1"),
        ({"inner": {"size": 2.5}}, "inner.size: expected int, got float 2.5"),
        ({"inner": {"size": False}}, "inner.size: expected int, got bool False"),
        ({"inner": {"mode": "c"}}, "inner.mode: 'c' is not one of 'a', 'b'"),
        ({"tags": "p"}, "tags: expected a list, got 'p'"),
        ({"tags": ["p", 3]}, "tags[1]: expected str, got int 3"),
        ({"named": [1]}, "named: expected a mapping, got [1]"),
        ({"named": {"k": {"size": "s"}}}, "named.k.size: expected int, got str 's'"),
        ({"maybe": "x"}, "maybe: expected int, got str 'x'"),
        ({"either": 1.5}, "either: expected int or str, got 1.5"),
    ],
)
def test_wrong_types_name_path_and_value(data: dict[str, Any], message: str) -> None:
    _, problems = _parse({"name": "x", **data})
    assert problems == [message]


def test_every_problem_is_collected() -> None:
    _, problems = _parse({"rate": "r", "flag": "f", "inner": {"mode": "z", "extra": 1}})
    assert len(problems) == 5
    assert "name: required key is missing" in problems
    assert "inner.extra: unknown key. Known keys: size, mode" in problems


@dataclass
class Holder:
    """An optional nested section, like ColumnConfig.encoder."""

    inner: Inner | None = None


def test_optional_dataclass_reports_nested_problem_paths() -> None:
    problems: list[str] = []
    from_dict(Holder, {"inner": {"size": "s"}}, "", problems)
    assert problems == ["inner.size: expected int, got str 's'"]


def test_optional_dataclass_parses() -> None:
    problems: list[str] = []
    assert from_dict(Holder, {"inner": {"size": 3}}, "", problems) == Holder(Inner(3))
    assert from_dict(Holder, {"inner": None}, "", problems) == Holder(None)
    assert problems == []


def test_optional_accepts_none() -> None:
    out, problems = _parse({"name": "x", "maybe": None})
    assert problems == [] and out.maybe is None


def test_convert_scalar_passthrough_for_any() -> None:
    problems: list[str] = []
    assert convert(Any, object, "p", problems) is object
    assert problems == []


def test_to_dict_nested_and_tuples_become_lists() -> None:
    plain = to_dict(Outer(name="x", widths=(3, 4), named={"k": Inner(2, "b")}))
    assert plain["widths"] == [3, 4]
    assert plain["named"] == {"k": {"size": 2, "mode": "b"}}
    assert plain["inner"] == {"size": 4, "mode": "a"}
    out, problems = _parse(plain)
    assert problems == []
    assert to_dict(out) == plain


@dataclass
class Ranged:
    dim: int = positive(128)
    dropout: float = fraction(0.1)
    widths: list[int] = positive([32, 64])
    proj: int = non_negative(0)
    scale: float = bounded(1.0, low=0.5, high=2.0, hint="a multiplier")
    side: int | None = bounded(None, low=1)


def test_ranges_are_checked_with_the_path_the_value_the_range_and_the_default() -> None:
    problems: list[str] = []
    data = {"dim": 0, "dropout": 1.0, "widths": [8, -1], "proj": -2, "scale": 3, "side": None}
    from_dict(Ranged, data, "fusion", problems)
    assert problems == [
        "fusion.dim: 0 is out of range: it must be >= 1; set e.g. the default, 128",
        "fusion.dropout: 1.0 is out of range: it must be in [0, 1) (0 turns it off); set e.g. the default, "
        "0.1",
        "fusion.widths[1]: -1 is out of range: it must be >= 1; set e.g. the default, [32, 64]",
        "fusion.proj: -2 is out of range: it must be >= 0; set e.g. the default, 0",
        "fusion.scale: 3.0 is out of range: it must be in [0.5, 2] (a multiplier); set e.g. the default, 1.0",
    ]


def test_values_in_range_and_wrong_types_give_one_message_each() -> None:
    problems: list[str] = []
    parsed = from_dict(Ranged, {"dim": 1, "dropout": 0.0, "scale": 2, "side": 3}, "x", problems)
    assert problems == [] and (parsed.dim, parsed.scale, parsed.side, parsed.widths) == (1, 2.0, 3, [32, 64])
    assert Ranged().widths is not Ranged().widths  # a list default is copied per instance
    from_dict(Ranged, {"dim": "wide"}, "x", problems)
    assert problems == ["x.dim: expected int, got str 'wide'"]  # the type problem only, no range message

"""Unit tests of the name registry."""

from __future__ import annotations

import pytest

from omnifuse.errors import OmnifuseError, UnknownNameError
from omnifuse.registry import Registry, unknown_name_message


def _registry() -> Registry[int]:
    reg: Registry[int] = Registry("widget")
    reg.add("textcnn", 1)
    reg.add("bilstm", 2)
    reg.add("bow", 3)
    return reg


def test_add_get_names_contains() -> None:
    reg = _registry()
    assert reg.get("bilstm") == 2
    assert reg.names() == ["bilstm", "bow", "textcnn"]  # sorted, not insertion order
    assert "bow" in reg
    assert "nope" not in reg
    assert 3 not in reg


def test_register_decorator_returns_entry_unchanged() -> None:
    reg: Registry[type] = Registry("thing")

    @reg.register("mine")
    class Mine:
        """An entry to register."""

    assert reg.get("mine") is Mine
    assert Mine.__name__ == "Mine"


def test_unknown_name_lists_choices_and_did_you_mean() -> None:
    reg = _registry()
    with pytest.raises(
        UnknownNameError,
        match=r"unknown widget 'textcn'\. Did you mean 'textcnn'\? "
        r"Available: bilstm, bow, textcnn$",
    ):
        reg.get("textcn")


def test_unknown_name_without_close_match_has_no_hint() -> None:
    reg = _registry()
    with pytest.raises(UnknownNameError) as info:
        reg.get("zzzzzz")
    assert str(info.value) == "unknown widget 'zzzzzz'. Available: bilstm, bow, textcnn"
    assert "Did you mean" not in str(info.value)


def test_unknown_name_error_is_a_key_error_and_omnifuse_error() -> None:
    reg = _registry()
    with pytest.raises(KeyError):
        reg.get("x")
    with pytest.raises(OmnifuseError):
        reg.get("x")


def test_duplicate_registration_is_refused_and_keeps_first() -> None:
    reg = _registry()
    with pytest.raises(KeyError, match="widget 'bow' is already registered"):
        reg.add("bow", 99)
    with pytest.raises(KeyError, match="widget 'bow' is already registered"):
        reg.register("bow")(100)
    assert reg.get("bow") == 3


def test_unknown_name_message_empty_choices() -> None:
    assert unknown_name_message("fusion", "x", []) == "unknown fusion 'x'. Available: "


def test_real_registries_are_filled_by_catalog() -> None:
    from omnifuse import catalog

    assert "textcnn" in catalog.list_encoders()
    assert "concat" in catalog.list_fusions()
    assert catalog.list_heads() == sorted(catalog.list_heads())

"""Tests for pyconvex.values.value: Int64, UNSET, to_value, limits, sizes and type names."""

from __future__ import annotations

import copy
import math
import pickle
from datetime import datetime
from enum import StrEnum

import pytest

from pyconvex.errors import InvalidValueError
from pyconvex.values import (
    UNSET,
    Int64,
    Unset,
    check_document,
    convex_size,
    to_value,
    value_type_name,
)


def test_int64_range_and_repr() -> None:
    assert repr(Int64(5)) == "Int64(5)"
    assert str(Int64(-5)) == "-5"
    assert Int64(2**63 - 1) == 2**63 - 1
    assert Int64(-(2**63)) == -(2**63)
    with pytest.raises(InvalidValueError, match="out of range"):
        Int64(2**63)
    with pytest.raises(InvalidValueError, match="out of range"):
        Int64(-(2**63) - 1)
    with pytest.raises(InvalidValueError, match="not an integer"):
        Int64(2.5)
    assert type(Int64(3.0)) is Int64


def test_unset_is_a_falsy_singleton() -> None:
    assert Unset() is UNSET
    assert not UNSET
    assert repr(UNSET) == "UNSET"
    assert copy.deepcopy(UNSET) is UNSET
    assert pickle.loads(pickle.dumps(UNSET)) is UNSET


def test_scalars() -> None:
    assert to_value(None) is None
    assert to_value(True) is True
    assert type(to_value(True)) is bool
    assert to_value(1.5) == 1.5
    assert to_value("é") == "é"
    n = to_value(Int64(7))
    assert type(n) is Int64
    assert to_value(b"ab") == b"ab"
    assert to_value(bytearray(b"ab")) == b"ab"
    assert type(to_value(memoryview(b"ab"))) is bytes


def test_special_floats_are_allowed() -> None:
    assert math.isnan(to_value(math.nan))  # type: ignore[arg-type]
    assert to_value(math.inf) == math.inf
    z = to_value(-0.0)
    assert z == 0.0 and math.copysign(1.0, z) == -1.0  # type: ignore[arg-type]


def test_plain_int_becomes_float() -> None:
    result = to_value(3)
    assert result == 3.0 and type(result) is float
    assert to_value(2**53) == float(2**53)
    assert to_value(-(2**53)) == float(-(2**53))


def test_big_int_suggests_int64() -> None:
    with pytest.raises(InvalidValueError) as info:
        to_value({"a": [1, 2**53 + 1]})
    assert str(info.value) == (
        "Python int 9007199254740993 is too large for a float64 (|x| > 2**53 loses precision; "
        "use Int64(9007199254740993) for a 64-bit integer) at .a[1]"
    )
    assert info.value.path == ".a[1]"
    with pytest.raises(InvalidValueError, match="and for an Int64"):
        to_value(2**64)


def test_bool_stays_bool_inside_containers() -> None:
    result = to_value({"a": [True, 1]})
    assert result == {"a": [True, 1.0]}
    assert type(result["a"][0]) is bool  # type: ignore[index, call-overload]
    assert type(result["a"][1]) is float  # type: ignore[index, call-overload]


def test_tuples_become_lists_and_unset_fields_are_dropped() -> None:
    assert to_value({"t": (1, "x"), "gone": UNSET, "n": None}) == {"t": [1.0, "x"], "n": None}


def test_containers_are_copied() -> None:
    inner = ["x"]
    doc = {"a": inner}
    result = to_value(doc)
    assert result == doc
    assert result is not doc
    assert result["a"] is not inner  # type: ignore[index, call-overload]


def test_str_subclass_keys_become_str() -> None:
    class Color(StrEnum):
        RED = "red"

    result = to_value({Color.RED: 1.0})
    assert result == {"red": 1.0}
    assert all(type(k) is str for k in result)  # type: ignore[union-attr]


def test_unsupported_types_name_type_and_alternative() -> None:
    with pytest.raises(InvalidValueError) as info:
        to_value({"reactions": [{"emoji": "x"}, {"emoji": {1, 2}}]}, ".args")
    assert (
        str(info.value)
        == "set {1, 2} is not a Convex value (use a list) at .args.reactions[1].emoji"
    )
    assert info.value.path == ".args.reactions[1].emoji"
    with pytest.raises(InvalidValueError, match=r"datetime .* milliseconds since the epoch"):
        to_value(datetime(2024, 1, 1))

    class Thing:
        def __repr__(self) -> str:
            return "Thing()"

    with pytest.raises(
        InvalidValueError, match=r"Thing Thing\(\) is not a Convex value \(use None"
    ):
        to_value([Thing()])


def test_unset_outside_an_object_field_is_rejected() -> None:
    with pytest.raises(InvalidValueError, match=r"not allowed inside an array .* at \[0\]"):
        to_value([UNSET])
    with pytest.raises(InvalidValueError, match="only allowed as an object field"):
        to_value(UNSET)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("$id", 'Field name "$id" must not start with "$"'),
        ("", "Field name must not be empty"),
        ("caf\u00e9", "Field name 'café' must contain only printable ASCII characters (0x20-0x7E)"),
        ("a\tb", "Field name 'a\\tb' must contain only printable ASCII characters (0x20-0x7E)"),
        ("a\x7fb", "Field name 'a\\x7fb' must contain only printable ASCII characters (0x20-0x7E)"),
        (1, "Field name 1 must be a string, got int; convert dictionary keys to str"),
    ],
)
def test_field_name_rules(name: object, message: str) -> None:
    with pytest.raises(InvalidValueError) as info:
        to_value({"outer": {name: 1.0}})
    assert str(info.value) == f"{message} at .outer"


def test_field_name_edge_cases_allowed() -> None:
    ok = {" ": 1.0, "~": 2.0, "_id": 3.0, "a$": 4.0, "x" * 1024: 5.0}
    assert to_value(ok) == {k: v for k, v in ok.items()}
    with pytest.raises(InvalidValueError, match="1025 characters long; the limit is 1024"):
        to_value({"x" * 1025: 1.0})


def test_array_and_object_limits() -> None:
    assert len(to_value([0.0] * 8192)) == 8192  # type: ignore[arg-type]
    with pytest.raises(InvalidValueError, match=r"Array has 8193 items; the limit is 8192 at \.a"):
        to_value({"a": [0.0] * 8193})
    assert len(to_value({f"f{i}": 0.0 for i in range(1024)})) == 1024  # type: ignore[arg-type]
    with pytest.raises(
        InvalidValueError, match=r"Object has 1025 fields; the limit is 1024 at \[0\]"
    ):
        to_value([{f"f{i}": 0.0 for i in range(1025)}])


def _nest(levels: int) -> object:
    value: object = "leaf"
    for _ in range(levels):
        value = [value]
    return value


def test_value_nesting_limit() -> None:
    to_value(_nest(64))
    with pytest.raises(InvalidValueError, match="nested more than 64 levels deep") as info:
        to_value(_nest(65))
    assert info.value.path == "[0]" * 64


def test_convex_size() -> None:
    assert convex_size(None) == 1
    assert convex_size(True) == 1
    assert convex_size(1.5) == 9
    assert convex_size(Int64(1)) == 9
    assert convex_size("abc") == 5
    assert convex_size("é") == 4
    assert convex_size(b"abc") == 5
    assert convex_size([1.0, None]) == 12
    assert convex_size({"ab": "x"}) == 2 + 2 + 1 + 3
    assert convex_size({}) == 2


def test_check_document_returns_size() -> None:
    doc = {"body": "hello", "n": 1.0}
    assert check_document(doc, "messages") == convex_size(doc) == 2 + (4 + 1 + 7) + (1 + 1 + 9)


def test_check_document_nesting_limit_names_table_and_path() -> None:
    ok: dict[str, object] = {"a": _nest(15)}
    check_document(ok, "t")  # type: ignore[arg-type]
    with pytest.raises(InvalidValueError) as info:
        check_document({"a": _nest(16)}, "messages")  # type: ignore[dict-item]
    assert info.value.path == ".a" + "[0]" * 15
    assert str(info.value).startswith(
        'Document in table "messages" is nested more than 16 levels deep (the limit for documents)'
    )


def test_check_document_size_limit() -> None:
    doc = {"small": "x", "big": "x" * (1 << 20)}
    with pytest.raises(InvalidValueError) as info:
        check_document(doc, "files")  # type: ignore[arg-type]
    size = convex_size(doc)  # type: ignore[arg-type]
    assert str(info.value) == (
        f'Document in table "files" is {size} bytes; the limit is 1 MiB (1048576 bytes); '
        f"the largest field is .big ({(1 << 20) + 2} bytes)"
    )


def test_value_type_name() -> None:
    assert [value_type_name(x) for x in ("s", 1.0, Int64(1), True, None, b"", [], {})] == [
        "string",
        "float64",
        "int64",
        "boolean",
        "null",
        "bytes",
        "array",
        "object",
    ]
    assert value_type_name(UNSET) == "undefined"
    assert value_type_name({1}) == "set"
    assert value_type_name(3) == "int"

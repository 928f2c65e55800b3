"""Tests for pyconvex.values.encoding: Convex JSON, the clean export, dumps/loads."""

from __future__ import annotations

import json
import math
import struct

import pytest

from pyconvex.errors import InvalidValueError
from pyconvex.values import (
    UNSET,
    Int64,
    decode_value,
    dumps_value,
    dumps_values,
    encode_clean,
    encode_value,
    loads_value,
)


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (Int64(123), {"$integer": "ewAAAAAAAAA="}),
        (Int64(-1), {"$integer": "//////////8="}),
        (Int64(0), {"$integer": "AAAAAAAAAAA="}),
        (Int64(2**63 - 1), {"$integer": "/////////38="}),
        (-math.inf, {"$float": "AAAAAAAA8P8="}),
        (math.inf, {"$float": "AAAAAAAA8H8="}),
        (-0.0, {"$float": "AAAAAAAAAIA="}),
        (b"hi", {"$bytes": "aGk="}),
        (b"", {"$bytes": ""}),
    ],
)
def test_special_encodings_round_trip(value: object, encoded: object) -> None:
    assert encode_value(value) == encoded  # type: ignore[arg-type]
    decoded = decode_value(encoded)
    assert decoded == value
    assert type(decoded) is type(value)
    if isinstance(value, float):
        assert math.copysign(1.0, decoded) == math.copysign(1.0, value)  # type: ignore[arg-type]


def test_nan_round_trip() -> None:
    assert encode_value(math.nan) == {"$float": "AAAAAAAA+H8="}
    assert math.isnan(decode_value({"$float": "AAAAAAAA+H8="}))  # type: ignore[arg-type]


def test_plain_values_stay_plain() -> None:
    doc = {"s": "x", "f": 1.5, "z": 0.0, "b": True, "n": None, "l": [1.0, "a", [False]]}
    assert encode_value(doc) is doc  # nothing to convert: no copy
    assert decode_value(doc) is doc


def test_nested_conversion_copies_only_changed_containers() -> None:
    untouched = ["a", "b"]
    doc = {"keep": untouched, "n": [Int64(1)]}
    encoded = encode_value(doc)
    assert encoded == {"keep": ["a", "b"], "n": [{"$integer": "AQAAAAAAAAA="}]}
    assert encoded["keep"] is untouched
    assert doc["n"] == [Int64(1)]  # the input is not modified


def test_encode_drops_unset_fields_and_rejects_non_values() -> None:
    assert encode_value({"a": UNSET, "b": 1.0}) == {"b": 1.0}
    with pytest.raises(InvalidValueError, match=r"set \{1\} is not a Convex value .* at \.a\[0\]"):
        encode_value({"a": [{1}]})  # type: ignore[list-item]


def test_json_ints_decode_to_float() -> None:
    decoded = decode_value({"a": 5, "b": [2**60]})
    assert decoded == {"a": 5.0, "b": [float(2**60)]}
    assert type(decoded["a"]) is float  # type: ignore[index, call-overload]
    assert type(decoded["b"][0]) is float  # type: ignore[index, call-overload]
    assert loads_value("12345678901234567890") == 12345678901234567890.0


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        (
            {"$set": []},
            "$set is no longer a Convex type (Sets and Maps were removed; use an array or an object)",
        ),
        (
            {"$map": []},
            "$map is no longer a Convex type (Sets and Maps were removed; use an array or an object)",
        ),
        (
            {"$foo": 1},
            'Unknown special object key "$foo" (field names must not start with "$"; only $integer, $float and $bytes are special)',
        ),
        ({"$integer": "AQ=="}, "$integer must hold 8 bytes of base64, got 1 bytes"),
        ({"$integer": "not base64!"}, "$integer holds invalid base64: 'not base64!'"),
        ({"$integer": 5}, "$integer must hold a base64 string, got 5"),
        ({"$bytes": "@@"}, "$bytes holds invalid base64: '@@'"),
        (
            {"$float": "AAAAAAAA8D8="},
            "$float must only hold NaN, Infinity, -Infinity or -0, got 1.0 (send ordinary floats as plain JSON numbers)",
        ),
        (
            {"$float": "AAAAAAAAAAA="},
            "$float must only hold NaN, Infinity, -Infinity or -0, got 0.0 (send ordinary floats as plain JSON numbers)",
        ),
        (
            {"$integer": "AAAAAAAAAAA=", "x": 1},
            'Field name "$integer" must not start with "$" (objects with $-keys are reserved for $integer, $float and $bytes)',
        ),
        (
            {"bad key\n": 1},
            "Field name 'bad key\\n' must contain only printable ASCII characters (0x20-0x7E)",
        ),
    ],
)
def test_decode_errors_name_the_path(obj: object, message: str) -> None:
    with pytest.raises(InvalidValueError) as info:
        decode_value({"outer": [obj]}, ".args")
    assert str(info.value) == f"{message} at .args.outer[0]"
    assert info.value.path == ".args.outer[0]"


def test_decode_limits() -> None:
    with pytest.raises(InvalidValueError, match=r"Array has 8193 items; the limit is 8192 at \.a"):
        decode_value({"a": [1] * 8193})
    with pytest.raises(InvalidValueError, match="Object has 1025 fields"):
        decode_value({f"f{i}": 1 for i in range(1025)})
    deep: object = 1
    for _ in range(65):
        deep = [deep]
    with pytest.raises(InvalidValueError, match="nested more than 64 levels"):
        decode_value(deep)


def test_encode_clean() -> None:
    value = {
        "i": Int64(-5),
        "b": b"hi",
        "nan": math.nan,
        "inf": math.inf,
        "ninf": -math.inf,
        "nz": -0.0,
        "l": [1.5, None, True, "s"],
    }
    clean = encode_clean(value)  # type: ignore[arg-type]
    assert clean == {
        "i": "-5",
        "b": "aGk=",
        "nan": "NaN",
        "inf": "Infinity",
        "ninf": "-Infinity",
        "nz": -0.0,
        "l": [1.5, None, True, "s"],
    }
    assert math.copysign(1.0, clean["nz"]) == -1.0
    assert json.dumps(clean["nz"]) == "-0.0"


def test_dumps_value_is_compact_and_keeps_float_form() -> None:
    text = dumps_value({"a": 7.0, "s": "é", "l": [1.5, None, True], "n": Int64(1)})
    assert text == '{"a":7.0,"s":"é","l":[1.5,null,true],"n":{"$integer":"AQAAAAAAAAA="}}'


def test_dumps_value_special_floats() -> None:
    assert (
        dumps_value([math.nan, -0.0, 0.0])
        == '[{"$float":"AAAAAAAA+H8="},{"$float":"AAAAAAAAAIA="},0.0]'
    )


def test_dumps_values_is_dumps_value_of_each(monkeypatch: pytest.MonkeyPatch) -> None:
    values = [
        {"a": 7.0, "b": [-0.0, Int64(2)], "c": b"x"},
        {},
        [],
        "s",
        None,
        {"m": ["a", "x", "b"]},
    ]
    expected = [dumps_value(x) for x in values]
    assert dumps_values(values) == expected
    assert dumps_values(values[:1]) == expected[:1] and dumps_values([]) == []
    # A value that holds the separator is still cut right.
    monkeypatch.setattr("secrets.token_hex", lambda n: "x")
    assert dumps_values(values) == expected


def test_dumps_loads_round_trip() -> None:
    value = {
        "s": "x\u2603\x00",
        "f": [0.1, -2.5, 1e300, 7.0, -0.0, math.inf],
        "i": [Int64(-(2**63)), Int64(2**63 - 1)],
        "b": b"\x00\xff",
        "o": {"nested": {"deep": [None, False]}},
    }
    back = loads_value(dumps_value(value))  # type: ignore[arg-type]
    assert back == value
    assert math.copysign(1.0, back["f"][4]) == -1.0  # type: ignore[index, call-overload]
    assert type(back["i"][0]) is Int64  # type: ignore[index, call-overload]


def test_loads_rejects_nan_constants_and_bad_json() -> None:
    with pytest.raises(InvalidValueError, match="JSON constant NaN is not valid Convex JSON"):
        loads_value("[NaN]")
    with pytest.raises(InvalidValueError, match="Invalid JSON"):
        loads_value("{")


def test_float_bits_of_special_encoding() -> None:
    # -0.0's $float payload is its little-endian IEEE bytes.
    import base64

    raw = base64.b64decode(encode_value(-0.0)["$float"])
    assert raw == struct.pack("<d", -0.0)

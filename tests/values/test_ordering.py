"""Tests for pyconvex.values.ordering: Convex's total order and order-preserving index keys."""

from __future__ import annotations

import functools
import itertools
import math
import random
import struct

import pytest

from pyconvex.errors import InvalidValueError
from pyconvex.values import (
    UNSET,
    Int64,
    Unset,
    Value,
    compare_values,
    encode_key,
    encode_key_part,
    key_successor,
)

NEG_NAN = struct.unpack("<d", struct.pack("<Q", 0xFFF8000000000000))[0]

# Strictly increasing in Convex order.
ASCENDING: list[Value | Unset] = [
    UNSET,
    None,
    Int64(-(2**63)),
    Int64(-1),
    Int64(0),
    Int64(1),
    Int64(2**63 - 1),
    NEG_NAN,
    -math.inf,
    -1e300,
    -1.0,
    -5e-324,
    -0.0,
    0.0,
    5e-324,
    1.0,
    2.5,
    1e300,
    math.inf,
    math.nan,
    False,
    True,
    "",
    "\x00",
    "\x00\x00",
    "\x01",
    "A",
    "a",
    "a\x00",
    "a\x00b",
    "ab",
    "\u00e9",
    "\uffff",
    "\U0001f600",
    b"",
    b"\x00",
    b"\x00\x00",
    b"\x00\xff",
    b"\x01",
    b"\xff",
    b"\xff\xff",
    [],
    [None],
    [None, None],
    [Int64(5)],
    [1.0],
    [1.0, "a"],
    [1.0, []],
    [1.0, [[]]],
    [2.0],
    ["a"],
    [[]],
    [[1.0]],
    {},
    {"a": None},
    {"a": None, "b": 1.0},
    {"a": 1.0},
    {"a": 1.0, "b": 1.0},
    {"a": "x"},
    {"b": None},
    {"ba": None},
]


def test_compare_values_follows_convex_order() -> None:
    for i, a in enumerate(ASCENDING):
        for j, b in enumerate(ASCENDING):
            expected = (i > j) - (i < j)
            assert compare_values(a, b) == expected, (a, b)


def test_encode_key_part_follows_convex_order() -> None:
    keys = [encode_key_part(v) for v in ASCENDING]
    assert keys == sorted(keys)
    assert len(set(keys)) == len(keys)


def test_float_details() -> None:
    assert compare_values(-0.0, 0.0) == -1
    assert compare_values(math.nan, math.nan) == 0
    assert compare_values(math.nan, math.inf) == 1
    assert compare_values(NEG_NAN, -math.inf) == -1
    assert compare_values(Int64(10), 1.0) == -1  # every int64 sorts before every float64
    assert compare_values(True, "") == -1


def test_strings_compare_by_utf8_bytes_not_code_units() -> None:
    # U+FFFF < U+1F600 in UTF-8 (and code points) but not in UTF-16 code units.
    assert compare_values("\uffff", "\U0001f600") == -1
    assert encode_key_part("\uffff") < encode_key_part("\U0001f600")


def test_object_order_ignores_insertion_order() -> None:
    assert compare_values({"b": 1.0, "a": 2.0}, {"a": 2.0, "b": 1.0}) == 0
    assert encode_key_part({"b": 1.0, "a": 2.0}) == encode_key_part({"a": 2.0, "b": 1.0})


def _random_value(rng: random.Random, depth: int = 0) -> Value:
    kind = rng.randrange(10 if depth < 3 else 8)
    if kind == 0:
        return None
    if kind == 1:
        return Int64(rng.choice([0, 1, -1, 2**63 - 1, -(2**63), rng.randrange(-100, 100)]))
    if kind == 2:
        return rng.choice(
            [0.0, -0.0, 1.0, -1.0, 0.5, math.inf, -math.inf, math.nan, NEG_NAN, rng.uniform(-5, 5)]
        )
    if kind == 3:
        return rng.random() < 0.5
    if kind == 4:
        return "".join(
            rng.choice("\x00\x01ab\u00e9\uffff\U0001f600") for _ in range(rng.randrange(4))
        )
    if kind == 5:
        return bytes(rng.choice([0, 1, 0x7F, 0xFE, 0xFF]) for _ in range(rng.randrange(4)))
    if kind in (6, 7):
        return rng.choice([None, 0.0, "a", "", b"", True])
    if kind == 8:
        return [_random_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice("abc"): _random_value(rng, depth + 1) for _ in range(rng.randrange(4))}


def _random_tuple(rng: random.Random) -> list[Value | Unset]:
    items: list[Value | Unset] = [_random_value(rng) for _ in range(rng.randrange(4))]
    if items and rng.random() < 0.2:
        items[rng.randrange(len(items))] = UNSET
    return items


def _compare_tuples(a: list[Value | Unset], b: list[Value | Unset]) -> int:
    for x, y in zip(a, b, strict=False):
        c = compare_values(x, y)
        if c:
            return c
    return (len(a) > len(b)) - (len(a) < len(b))


def test_property_encode_key_sorts_like_compare_values() -> None:
    rng = random.Random(20240501)
    tuples = [_random_tuple(rng) for _ in range(3000)]
    by_compare = sorted(tuples, key=functools.cmp_to_key(_compare_tuples))
    by_key = sorted(tuples, key=encode_key)
    assert [encode_key(t) for t in by_compare] == [encode_key(t) for t in by_key]
    for a, b in itertools.pairwise(tuples):
        ka, kb = encode_key(a), encode_key(b)
        assert _compare_tuples(a, b) == (ka > kb) - (ka < kb)
        assert (ka == kb) == (_compare_tuples(a, b) == 0)


def test_property_compare_values_is_antisymmetric() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        a, b = _random_value(rng), _random_value(rng)
        assert compare_values(a, b) == -compare_values(b, a)
        assert compare_values(a, a) == 0


def test_property_prefix_and_successor() -> None:
    rng = random.Random(99)
    for _ in range(2000):
        head = _random_tuple(rng)
        tail = _random_tuple(rng)
        other = _random_tuple(rng)
        prefix = encode_key(head)
        full = encode_key(head + tail)
        assert full.startswith(prefix)
        if head:
            upper = key_successor(prefix)
            assert prefix <= full < upper
            key = encode_key(other)
            if key.startswith(prefix):
                assert key < upper
            else:
                # Keys outside the prefix range are below it or at/after the successor.
                assert key < prefix or key >= upper
                assert (key < prefix) == (_compare_tuples(other, head) < 0)


def test_encode_key_is_concatenation_of_parts() -> None:
    values: list[Value | Unset] = ["a", Int64(1), [1.0, {"x": b"\x00"}], UNSET]
    assert encode_key(values) == b"".join(encode_key_part(v) for v in values)
    assert encode_key([]) == b""


def test_key_successor() -> None:
    assert key_successor(b"ab") == b"ac"
    assert key_successor(b"a\xff") == b"b"
    assert key_successor(b"a\xfe\xff\xff") == b"a\xff"
    assert key_successor(b"") == b"\xff"
    with pytest.raises(ValueError, match="all 0xFF"):
        key_successor(b"\xff\xff")


def test_missing_field_sorts_first() -> None:
    assert encode_key([UNSET]) < encode_key([None]) < encode_key([Int64(-(2**63))])
    assert compare_values(UNSET, None) == -1


def test_plain_int_is_treated_as_float64() -> None:
    assert encode_key_part(3) == encode_key_part(3.0)  # type: ignore[arg-type]
    assert compare_values(3, 3.0) == 0  # type: ignore[arg-type]


def test_non_values_are_rejected() -> None:
    with pytest.raises(InvalidValueError, match="cannot be part of an index key"):
        encode_key([{1, 2}])  # type: ignore[list-item]
    with pytest.raises(InvalidValueError, match="is not a Convex value"):
        compare_values(object(), 1.0)  # type: ignore[arg-type]

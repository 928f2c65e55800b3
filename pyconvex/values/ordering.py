"""Convex's total order over values, and index keys whose bytes sort in that order.

Across types: UNSET (undefined) < null < int64 < float64 < boolean < string < bytes < array <
object. Floats follow IEEE 754 total order (-NaN < -inf < ... < -0.0 < 0.0 < ... < inf < NaN),
strings compare by UTF-8 bytes, arrays element by element, objects field by field in sorted
field-name order (name, then value).

Key encoding: a one-byte tag per value, then its payload. Every encoding is prefix-free and
order-preserving, so concatenating them gives keys whose ``memcmp`` order is the lexicographic
order of the value tuples, and ``encode_key([a])`` is a byte prefix of ``encode_key([a, b])``.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

from pyconvex.errors import InvalidValueError
from pyconvex.values.value import UNSET, Int64, Unset, Value, short_repr

# Tags. _END closes arrays and objects and sorts below every tag so shorter containers sort first.
_END = b"\x00"
_T_UNSET = b"\x01"
_T_NULL = b"\x02"
_T_INT64 = 0x03
_T_FLOAT = 0x04
_T_FALSE = b"\x05"
_T_TRUE = b"\x06"
_T_STRING = b"\x07"
_T_BYTES = b"\x08"
_T_ARRAY = b"\x09"
_T_OBJECT = b"\x0a"

_SIGN = 1 << 63
_MASK = (1 << 64) - 1
_pack_u64 = struct.Struct(">Q").pack
_float_bits = struct.Struct(">d").pack
_unpack_u64 = struct.Struct(">Q").unpack


def _float_key(x: float) -> int:
    """The float's bits mapped so that unsigned integer order is IEEE total order."""
    bits: int = _unpack_u64(_float_bits(x))[0]
    return bits ^ _MASK if bits & _SIGN else bits | _SIGN


def _escaped(raw: bytes) -> bytes:
    # 0x00 inside the payload becomes 0x00 0xFF; the terminator is a lone 0x00, which sorts
    # below 0x00 0xFF and below every byte that can follow a payload byte.
    if b"\x00" in raw:
        raw = raw.replace(b"\x00", b"\x00\xff")
    return raw + b"\x00"


def _encode_into(value: object, out: list[bytes]) -> None:
    t = type(value)
    if t is str:
        out.append(_T_STRING)
        out.append(_escaped(value.encode("utf-8", "surrogatepass")))  # type: ignore[attr-defined]
    elif t is float or t is int:
        out.append(bytes((_T_FLOAT,)) + _pack_u64(_float_key(float(value))))  # type: ignore[arg-type]
    elif t is Int64:
        out.append(bytes((_T_INT64,)) + _pack_u64(value + _SIGN))  # type: ignore[operator]
    elif value is None:
        out.append(_T_NULL)
    elif t is bool:
        out.append(_T_TRUE if value else _T_FALSE)
    elif t is bytes:
        out.append(_T_BYTES)
        out.append(_escaped(value))  # type: ignore[arg-type]
    elif t is list or t is tuple:
        out.append(_T_ARRAY)
        for item in value:  # type: ignore[attr-defined]
            _encode_into(item, out)
        out.append(_END)
    elif t is dict:
        out.append(_T_OBJECT)
        for key in sorted(value):  # type: ignore[call-overload]
            item = value[key]  # type: ignore[index]
            if item is UNSET:
                continue
            out.append(_T_STRING)
            out.append(_escaped(key.encode("utf-8", "surrogatepass")))
            _encode_into(item, out)
        out.append(_END)
    elif value is UNSET:
        out.append(_T_UNSET)
    else:
        raise InvalidValueError(
            f"{type(value).__name__} {short_repr(value)} cannot be part of an index key "
            "(it is not a Convex value)"
        )


_FLOAT_TAG = bytes((_T_FLOAT,))


def encode_float_part(x: float) -> bytes:
    """``encode_key_part`` for a float, inlined: creation times are encoded for every document.

    >>> encode_float_part(1.5) == encode_key_part(1.5)
    True
    """
    bits: int = _unpack_u64(_float_bits(x))[0]
    return _FLOAT_TAG + _pack_u64(bits ^ _MASK if bits & _SIGN else bits | _SIGN)


def encode_key_part(value: Value | Unset) -> bytes:
    """The order-preserving bytes of one value (``UNSET`` for a missing field).

    >>> encode_key_part(None) < encode_key_part(Int64(0)) < encode_key_part(0.0)
    True
    """
    t = type(value)
    if t is str:
        return _T_STRING + _escaped(value.encode("utf-8", "surrogatepass"))  # type: ignore[union-attr]
    if t is float:
        return bytes((_T_FLOAT,)) + _pack_u64(_float_key(value))  # type: ignore[arg-type]
    out: list[bytes] = []
    _encode_into(value, out)
    return b"".join(out)


def encode_key(values: Sequence[Value | Unset]) -> bytes:
    """Index key bytes for a tuple of values: byte order equals Convex order of the tuples.

    >>> encode_key(["b"]) > encode_key(["a", 99.0])
    True
    >>> encode_key(["a", 1.0]).startswith(encode_key(["a"]))
    True
    """
    out: list[bytes] = []
    for value in values:
        _encode_into(value, out)
    return b"".join(out)


def key_successor(prefix: bytes) -> bytes:
    """The smallest byte string greater than every string that starts with ``prefix``.

    Use it as the exclusive upper bound of a prefix scan. Keys from ``encode_key`` never start
    with 0xFF, so for the empty prefix this returns ``b"\\xff"``, above every such key::

        >>> key_successor(b"ab\\xff")
        b'ac'
    """
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        if not prefix:
            return b"\xff"
        raise ValueError(
            f"No byte string follows every string starting with {prefix!r} (it is all 0xFF)"
        )
    return stripped[:-1] + bytes((stripped[-1] + 1,))


_RANKS: dict[type, int] = {
    Unset: 0,
    type(None): 1,
    Int64: 2,
    float: 3,
    int: 3,
    bool: 4,
    str: 5,
    bytes: 6,
    list: 7,
    tuple: 7,
    dict: 8,
}


def _rank(value: object) -> int:
    rank = _RANKS.get(type(value))
    if rank is None:
        raise InvalidValueError(f"{type(value).__name__} {short_repr(value)} is not a Convex value")
    return rank


def compare_values(a: Value | Unset, b: Value | Unset) -> int:
    """Compare two values in Convex's order: -1, 0 or 1 (consistent with ``encode_key``).

    >>> compare_values(None, Int64(-5)), compare_values(-0.0, 0.0), compare_values("b", "a")
    (-1, -1, 1)
    """
    ra = _rank(a)
    rb = _rank(b)
    if ra != rb:
        return -1 if ra < rb else 1
    x: Any = a
    y: Any = b
    if ra == 3:
        kx = _float_key(float(x))
        ky = _float_key(float(y))
        return (kx > ky) - (kx < ky)
    if ra == 5:
        if x == y:
            return 0
        if x.isascii() and y.isascii():
            return 1 if x > y else -1
        ex: bytes = x.encode("utf-8", "surrogatepass")
        ey: bytes = y.encode("utf-8", "surrogatepass")
        return (ex > ey) - (ex < ey)
    if ra == 2 or ra == 4 or ra == 6:
        return 1 if x > y else -1 if x < y else 0
    if ra == 7:
        for i, j in zip(x, y, strict=False):
            c = compare_values(i, j)
            if c:
                return c
        return (len(x) > len(y)) - (len(x) < len(y))
    if ra == 8:
        fx = [(k, v) for k, v in sorted(x.items()) if v is not UNSET]
        fy = [(k, v) for k, v in sorted(y.items()) if v is not UNSET]
        for (kx2, vx), (ky2, vy) in zip(fx, fy, strict=False):
            if kx2 != ky2:
                return compare_values(kx2, ky2)
            c = compare_values(vx, vy)
            if c:
                return c
        return (len(fx) > len(fy)) - (len(fx) < len(fy))
    return 0

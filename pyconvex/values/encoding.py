"""Convex JSON: values to and from the wire format (PROTOCOL.md §3) and the ``format: "json"`` export.

Int64 travels as ``{"$integer": base64(8 bytes LE)}``, bytes as ``{"$bytes": base64}``, and the
floats JSON cannot hold (NaN, ±Infinity, -0.0) as ``{"$float": base64(8 bytes LE)}``; everything
else is plain JSON. Encoders walk the value and copy a container only when something inside it
must change, so a document of strings and numbers costs one walk and no allocation.
"""

from __future__ import annotations

import binascii
import json
import math
import re
import secrets
import struct
from base64 import b64decode, b64encode
from collections.abc import Sequence
from itertools import accumulate
from typing import Any

from pyconvex.errors import InvalidValueError
from pyconvex.values.value import (
    MAX_ARRAY_ITEMS,
    MAX_OBJECT_FIELDS,
    MAX_VALUE_NESTING,
    UNSET,
    Int64,
    PathError,
    Value,
    check_field_name,
    is_good_field_name,
    short_repr,
)

_INF = math.inf
_NEG_INF = -math.inf
_pack_double = struct.Struct("<d").pack
_unpack_double = struct.Struct("<d").unpack
_copysign = math.copysign


def _is_special_float(x: float) -> bool:
    """NaN, ±Infinity or -0.0: the floats a plain JSON number cannot carry."""
    if x - x == 0.0:  # finite
        return x == 0.0 and _copysign(1.0, x) < 0.0
    return True


def encode_value(value: Value) -> Any:
    """A value in Convex's JSON encoding (``convex_encoded_json``), ready for ``json.dumps``.

    Unchanged containers are shared with the input, so treat the result as read-only::

        >>> encode_value({"n": Int64(123), "x": 1.5, "b": b"hi", "z": -0.0})
        {'n': {'$integer': 'ewAAAAAAAAA='}, 'x': 1.5, 'b': {'$bytes': 'aGk='}, 'z': {'$float': 'AAAAAAAAAIA='}}
    """
    try:
        return _encode(value)
    except PathError as e:
        raise e.to_error("") from None


def _encode(x: Any) -> Any:
    t = type(x)
    if t is str or t is bool or x is None:
        return x
    if t is float:
        if x - x == 0.0 and (x != 0.0 or _copysign(1.0, x) > 0.0):
            return x
        return {"$float": b64encode(_pack_double(x)).decode("ascii")}
    if t is dict:
        out: dict[str, Any] | None = None
        for key, item in x.items():
            t2 = type(item)
            if t2 is str or t2 is bool or item is None:
                continue
            if t2 is float and item - item == 0.0 and item != 0.0:
                continue
            if item is UNSET:
                if out is None:
                    out = dict(x)
                del out[key]
                continue
            try:
                encoded = _encode(item)
            except PathError as e:
                raise e.at(f".{key}") from None
            if encoded is not item:
                if out is None:
                    out = dict(x)
                out[key] = encoded
        return x if out is None else out
    if t is list:
        items: list[Any] | None = None
        for i, item in enumerate(x):
            t2 = type(item)
            if t2 is str or t2 is bool or item is None:
                continue
            if t2 is float and item - item == 0.0 and item != 0.0:
                continue
            try:
                encoded = _encode(item)
            except PathError as e:
                raise e.at(f"[{i}]") from None
            if encoded is not item:
                if items is None:
                    items = list(x)
                items[i] = encoded
        return x if items is None else items
    if t is Int64:
        return {"$integer": b64encode(x.to_bytes(8, "little", signed=True)).decode("ascii")}
    if t is bytes:
        return {"$bytes": b64encode(x).decode("ascii")}
    if t is int:
        # Not canonical (to_value makes ints floats) but harmless: encode it as the float it means.
        return _encode(float(x))
    if t is tuple:
        return _encode(list(x))
    if x is UNSET:
        raise PathError("UNSET (undefined) cannot be encoded here; only as an object field")
    raise PathError(
        f"{type(x).__name__} {short_repr(x)} is not a Convex value (convert it with to_value)"
    )


def decode_value(obj: Any, path: str = "") -> Value:
    """A value from Convex's JSON encoding (as parsed by ``json.loads``).

    Every JSON number becomes a float64 (as in Convex: integers beyond 2**53 stay floats);
    ``$integer``, ``$float`` and ``$bytes`` objects are decoded; field names are checked::

        >>> decode_value({"n": {"$integer": "ewAAAAAAAAA="}, "x": 7})
        {'n': Int64(123), 'x': 7.0}
        >>> decode_value({"s": {"$set": []}})
        Traceback (most recent call last):
        ...
        pyconvex.errors.InvalidValueError: $set is no longer a Convex type ... at .s
    """
    try:
        return _decode(obj, 0)
    except PathError as e:
        raise e.to_error(path) from None


def _decode(x: Any, depth: int) -> Value:
    t = type(x)
    if t is str or t is bool or x is None or t is float:
        return x  # type: ignore[no-any-return]
    if t is int:
        try:
            return float(x)
        except OverflowError:
            raise PathError(f"JSON number {short_repr(x)} is too large for a float64") from None
    if t is dict:
        if depth >= MAX_VALUE_NESTING:
            raise PathError(f"Value is nested more than {MAX_VALUE_NESTING} levels deep")
        if len(x) == 1:
            ((key, inner),) = x.items()
            if type(key) is str and key[:1] == "$":
                return _decode_special(key, inner)
        if len(x) > MAX_OBJECT_FIELDS:
            raise PathError(f"Object has {len(x)} fields; the limit is {MAX_OBJECT_FIELDS}")
        out: dict[str, Value] | None = None
        depth += 1
        for key, item in x.items():
            if not is_good_field_name(key):
                raise PathError(_bad_key_message(key))
            t2 = type(item)
            if t2 is str or t2 is bool or item is None or t2 is float:
                continue
            try:
                decoded = _decode(item, depth)
            except PathError as e:
                raise e.at(f".{key}") from None
            if decoded is not item:
                if out is None:
                    out = dict(x)
                out[key] = decoded
        return x if out is None else out
    if t is list:
        if depth >= MAX_VALUE_NESTING:
            raise PathError(f"Value is nested more than {MAX_VALUE_NESTING} levels deep")
        if len(x) > MAX_ARRAY_ITEMS:
            raise PathError(f"Array has {len(x)} items; the limit is {MAX_ARRAY_ITEMS}")
        items: list[Value] | None = None
        depth += 1
        for i, item in enumerate(x):
            t2 = type(item)
            if t2 is str or t2 is bool or item is None or t2 is float:
                continue
            try:
                decoded = _decode(item, depth)
            except PathError as e:
                raise e.at(f"[{i}]") from None
            if decoded is not item:
                if items is None:
                    items = list(x)
                items[i] = decoded
        return x if items is None else items
    raise PathError(f"{type(x).__name__} {short_repr(x)} is not JSON")


def _bad_key_message(key: object) -> str:
    problem = check_field_name(key)
    if problem is not None and type(key) is str and key[:1] == "$":
        return f"{problem} (objects with $-keys are reserved for $integer, $float and $bytes)"
    return problem or f"Invalid field name {key!r}"


def _b64(key: str, text: object, size: int | None) -> bytes:
    if type(text) is not str:
        raise PathError(f"{key} must hold a base64 string, got {short_repr(text)}")
    try:
        raw = b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise PathError(f"{key} holds invalid base64: {short_repr(text)}") from None
    if size is not None and len(raw) != size:
        raise PathError(f"{key} must hold {size} bytes of base64, got {len(raw)} bytes")
    return raw


def _decode_special(key: str, inner: object) -> Value:
    if key == "$integer":
        return Int64(int.from_bytes(_b64(key, inner, 8), "little", signed=True))
    if key == "$bytes":
        return _b64(key, inner, None)
    if key == "$float":
        (number,) = _unpack_double(_b64(key, inner, 8))
        if not _is_special_float(number):
            raise PathError(
                f"$float must only hold NaN, Infinity, -Infinity or -0, got {number!r} "
                "(send ordinary floats as plain JSON numbers)"
            )
        return number  # type: ignore[no-any-return]
    if key in ("$set", "$map"):
        raise PathError(
            f"{key} is no longer a Convex type (Sets and Maps were removed; "
            "use an array or an object)"
        )
    raise PathError(
        f'Unknown special object key "{key}" (field names must not start with "$"; '
        "only $integer, $float and $bytes are special)"
    )


def encode_clean(value: Value) -> Any:
    """A value in Convex's plain JSON export (``format: "json"``): lossy but readable.

    Int64 becomes a decimal string, bytes a base64 string, NaN/±Infinity the strings
    ``"NaN"``/``"Infinity"``/``"-Infinity"``; -0.0 stays a number::

        >>> encode_clean({"n": Int64(5), "b": b"hi", "x": math.inf})
        {'n': '5', 'b': 'aGk=', 'x': 'Infinity'}
    """
    t = type(value)
    if t is str or t is bool or value is None:
        return value
    if t is float:
        x: float = value  # type: ignore[assignment]
        if x - x == 0.0:
            return x
        if x != x:
            return "NaN"
        return "Infinity" if x > 0 else "-Infinity"
    if t is dict:
        return {
            k: encode_clean(item)
            for k, item in value.items()  # type: ignore[union-attr]
            if item is not UNSET
        }
    if t is list:
        return [encode_clean(item) for item in value]  # type: ignore[union-attr]
    if t is Int64:
        return str(int(value))  # type: ignore[arg-type]
    if t is bytes:
        return b64encode(value).decode("ascii")  # type: ignore[arg-type]
    if t is int:
        return float(value)  # type: ignore[arg-type]
    raise InvalidValueError(f"{type(value).__name__} {short_repr(value)} is not a Convex value")


def encode_export(value: Value) -> Any:
    """A value in Convex's export JSON (snapshot ZIPs, JSONL exports): an int64 is a bare
    integer, a float64 a number with a decimal point (NaN / ±Infinity / -0.0 as
    ``{"$float": base64 of its 8 little-endian bytes}``), bytes ``{"$bytes": base64}``::

        >>> encode_export({"n": Int64(5), "x": 2.0, "b": b"hi"})
        {'n': 5, 'x': 2.0, 'b': {'$bytes': 'aGk='}}
    """
    t = type(value)
    if t is str or t is bool or value is None:
        return value
    if t is float or t is int:
        x = float(value)  # type: ignore[arg-type]
        if x - x == 0.0 and not (x == 0.0 and math.copysign(1.0, x) < 0):
            return x
        return {"$float": b64encode(struct.pack("<d", x)).decode("ascii")}
    if t is Int64:
        return int(value)  # type: ignore[arg-type]
    if t is dict:
        return {
            k: encode_export(item)
            for k, item in value.items()  # type: ignore[union-attr]
            if item is not UNSET
        }
    if t is list:
        return [encode_export(item) for item in value]  # type: ignore[union-attr]
    if t is bytes:
        return {"$bytes": b64encode(value).decode("ascii")}  # type: ignore[arg-type]
    raise InvalidValueError(f"{type(value).__name__} {short_repr(value)} is not a Convex value")


def decode_export(obj: Any) -> Value:
    """The inverse of :func:`encode_export` (also reading Convex's ``$integer`` encoding); a
    JSON integer is an int64, a number with a decimal point a float64. Raises ValueError."""
    if obj is None or isinstance(obj, bool | str):
        return obj
    if isinstance(obj, int):
        return Int64(obj)
    if isinstance(obj, float):
        return obj
    if isinstance(obj, list):
        return [decode_export(x) for x in obj]
    if isinstance(obj, dict):
        if len(obj) == 1:
            ((key, raw),) = obj.items()
            if key in ("$float", "$bytes", "$integer"):
                return _decode_special(key, raw)
        return {str(k): decode_export(v) for k, v in obj.items()}
    raise ValueError(f"{type(obj).__name__} is not a JSON value")


_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode


def dumps_value(value: Value) -> str:
    """Compact JSON text of a value in Convex's encoding (how documents are persisted).

    >>> dumps_value({"a": 7.0, "n": Int64(1), "s": "é"})
    '{"a":7.0,"n":{"$integer":"AQAAAAAAAAA="},"s":"é"}'
    """
    return _dumps(encode_value(value))


def dumps_values(values: Sequence[Value]) -> list[str]:
    """:func:`dumps_value` of each value, for many at once (an import's documents): one
    encoder call over all of them, cut apart at a random separator — ~1 us a document less
    than calling the encoder per value.

    >>> dumps_values([{"a": 1.0}, {"b": [Int64(1)]}])
    ['{"a":1.0}', '{"b":[{"$integer":"AQAAAAAAAAA="}]}']
    """
    encoded = [encode_value(x) for x in values]
    if len(encoded) < 2:
        return [_dumps(x) for x in encoded]
    # A separator no value holds (were one to hold it, the count would not match).
    marker = secrets.token_hex(8)
    items = [item for x in encoded for item in (x, marker)]
    items.pop()
    parts = _dumps(items)[1:-1].split(f',"{marker}",')
    if len(parts) == len(encoded):
        return parts
    return [_dumps(x) for x in encoded]


#: How deep a JSON text may nest arrays and objects before it is parsed: serde_json's limit,
#: which Convex's backend parses every message and body with. A Convex value inside it may nest
#: at most ``MAX_VALUE_NESTING`` (64) levels; the message around it adds a few.
MAX_JSON_NESTING = 128

_NOT_STRUCTURE = bytes(c for c in range(256) if c not in b'[]{}"')
_QUOTED = re.compile(rb'"[^"]*"')
_DEPTH_STEP = [0] * 256
for _c in b"[{":
    _DEPTH_STEP[_c] = 1
for _c in b"]}":
    _DEPTH_STEP[_c] = -1


def json_nesting(text: str | bytes) -> int:
    """How deep ``text`` nests arrays and objects, found without parsing it (and so without
    recursion): brackets inside strings do not count. Malformed JSON gives some number; the
    parser reports what is wrong with it.

    >>> json_nesting('{"a": [1, {"b": "[[["}]}')
    3
    """
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else bytes(text)
    if b"\\" in data:
        # Escapes go first, pairs from the left as a JSON parser reads them: what remains
        # of each string is its quotes and the brackets it holds.
        data = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    skeleton = data.translate(None, _NOT_STRUCTURE)
    if b'"' in skeleton:
        # Two adjacent quotes can go without changing which brackets are inside a string.
        skeleton = skeleton.replace(b'""', b"")
        if b'"' in skeleton:
            skeleton = _QUOTED.sub(b"", skeleton)
    return max(0, max(accumulate(map(_DEPTH_STEP.__getitem__, skeleton)), default=0))


def check_json_nesting(text: str | bytes, what: str = "The JSON text") -> None:
    """Raise ``InvalidValueError`` when ``text`` nests deeper than ``MAX_JSON_NESTING``;
    call it before ``json.loads``, whose C parser recurses once per level. Costs two
    ``count`` calls for a text with few brackets (every usual message).
    """
    if isinstance(text, str):
        openers = text.count("[") + text.count("{")
    else:
        openers = text.count(b"[") + text.count(b"{")
    if openers <= MAX_JSON_NESTING:
        return
    depth = json_nesting(text)
    if depth > MAX_JSON_NESTING:
        raise InvalidValueError(
            f"{what} is too nested (nested {depth} levels deep > maximum nesting "
            f"{MAX_JSON_NESTING}); Convex values nest at most {MAX_VALUE_NESTING} levels."
        )


def _reject_constant(name: str) -> Any:
    raise InvalidValueError(
        f"JSON constant {name} is not valid Convex JSON (NaN and Infinity travel as $float)"
    )


_loads = json.JSONDecoder(parse_int=float, parse_constant=_reject_constant).decode


def loads_value(text: str) -> Value:
    """The value in JSON text written by ``dumps_value`` (or any Convex JSON).

    >>> loads_value('{"a":7,"n":{"$integer":"AQAAAAAAAAA="}}')
    {'a': 7.0, 'n': Int64(1)}
    """
    check_json_nesting(text)
    try:
        parsed = _loads(text)
    except json.JSONDecodeError as e:
        raise InvalidValueError(f"Invalid JSON: {e}") from None
    return decode_value(parsed)

"""How values appear in error messages, written exactly as Convex writes them.

Apps and tests ported from Convex match on its error texts, so two notations are copied:

* :func:`display_value`: the backend's (Rust) display of a value inside validation errors
  (``Value: {a: 1.0, b: "x"}``): fields sorted, floats always with a fraction or exponent,
  strings in double quotes, bytes as ``b"<base64>"``, int64 as plain digits.
* :func:`stringify_for_error`: convex-js's ``stringifyValueForError``, the message of a
  ``ConvexError`` thrown with non-string data: compact JSON, numbers as JavaScript prints them
  (``100``, not ``100.0``), an int64 as the string ``"7n"``.

    >>> display_value({"b": "x", "a": 1.0})
    '{a: 1.0, b: "x"}'
    >>> stringify_for_error({"code": "BAD", "n": 100.0, "big": Int64(7)})
    '{"code":"BAD","n":100,"big":"7n"}'
"""

from __future__ import annotations

import base64
import json
import math
from decimal import Decimal

from pyconvex.values.value import UNSET, Int64

#: convex-js shortens longer messages to this many characters.
MAX_VALUE_FOR_ERROR_LEN = 16384
_TRUNCATED = "[...truncated]"


def display_value(value: object) -> str:
    """``value`` as the Convex backend displays it in an error message.

    Python values that Convex would have converted are shown converted (an ``int`` as the
    float64 it becomes, a tuple as an array); anything else by its ``repr``.

    >>> display_value([1, Int64(2), None, b"\\x00", True])
    '[1.0, 2, null, b"AA==", true]'
    """
    text = _display(value, 0)
    if len(text) > MAX_VALUE_FOR_ERROR_LEN:
        text = text[: MAX_VALUE_FOR_ERROR_LEN - len(_TRUNCATED)] + _TRUNCATED
    return text


def _display(value: object, depth: int) -> str:
    t = type(value)
    if value is None:
        return "null"
    if t is bool:
        return "true" if value else "false"
    if t is Int64:
        return int.__repr__(value)
    if t is float or t is int:
        return rust_float(float(value))  # type: ignore[arg-type]
    if isinstance(value, str):
        return rust_string(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return "b" + rust_string(base64.b64encode(bytes(value)).decode("ascii"))
    if value is UNSET:
        return "undefined"
    if depth > 64:
        return "..."
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_display(item, depth + 1) for item in value) + "]"
    if isinstance(value, dict):
        items = sorted((str(k), v) for k, v in value.items() if v is not UNSET)
        return "{" + ", ".join(f"{k}: {_display(v, depth + 1)}" for k, v in items) + "}"
    return repr(value)


def rust_float(x: float) -> str:
    """A float64 as Rust's ``{:?}`` prints it: ``1.0``, ``0.1``, ``1e16``, ``1.5e-7``, ``NaN``.

    >>> rust_float(100.0), rust_float(1e21), rust_float(2.5e-05), rust_float(float("-inf"))
    ('100.0', '1e21', '2.5e-5', '-inf')
    """
    if math.isnan(x):
        return "NaN"
    text = repr(x)  # Python and Rust switch to exponents at the same magnitudes
    if "e" in text:
        mantissa, exponent = text.split("e")
        return f"{mantissa.removesuffix('.0')}e{int(exponent)}"
    return text


def rust_string(s: str) -> str:
    """A string as Rust's ``{:?}`` prints it: double quotes, ``\\n``-style escapes, and
    ``\\u{..}`` for other control characters.

    >>> print(rust_string('say "hi"\\n'))
    "say \\"hi\\"\\n"
    """
    out = ['"']
    for ch in s:
        code = ord(ch)
        if ch in _RUST_ESCAPES:
            out.append(_RUST_ESCAPES[ch])
        elif code < 0x20 or 0x7F <= code < 0xA0:
            out.append(f"\\u{{{code:x}}}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


_RUST_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "\0": "\\0"}


def stringify_for_error(value: object) -> str:
    """convex-js's ``stringifyValueForError``: ``JSON.stringify`` with int64 as ``"7n"``,
    shortened to 16384 characters.

    >>> stringify_for_error([1.0, 0.5, float("nan"), b"x", {"2": 1.0, "b": None, "1": 2.0}])
    '[1,0.5,null,{},{"1":2,"2":1,"b":null}]'
    """
    text = _stringify(value)
    if len(text) > MAX_VALUE_FOR_ERROR_LEN:
        cut = MAX_VALUE_FOR_ERROR_LEN - len(_TRUNCATED)
        text = text[:cut] + _TRUNCATED
    return text


def _stringify(value: object) -> str:
    t = type(value)
    if value is None:
        return "null"
    if t is bool:
        return "true" if value else "false"
    if t is Int64:
        return f'"{int.__repr__(value)}n"'
    if t is float or t is int:
        return js_number(float(value))  # type: ignore[arg-type]
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bytes | bytearray | memoryview):
        return "{}"  # JSON.stringify of an ArrayBuffer
    if value is UNSET:
        return '"undefined"'
    if isinstance(value, list | tuple):
        return "[" + ",".join(_stringify(item) for item in value) + "]"
    if isinstance(value, dict):
        items = [(str(k), v) for k, v in value.items()]
        # JavaScript lists integer-like keys first, in numeric order.
        index = [kv for kv in items if _is_array_index(kv[0])]
        if index:
            index.sort(key=lambda kv: int(kv[0]))
            items = index + [kv for kv in items if not _is_array_index(kv[0])]
        return (
            "{"
            + ",".join(f"{json.dumps(k, ensure_ascii=False)}:{_stringify(v)}" for k, v in items)
            + "}"
        )
    return json.dumps(repr(value), ensure_ascii=False)


def _is_array_index(key: str) -> bool:
    return (
        key.isdigit() and key.isascii() and (key == "0" or key[0] != "0") and int(key) < 2**32 - 1
    )


def js_number(x: float) -> str:
    """A float64 as JavaScript's ``String(x)`` / ``JSON.stringify`` writes it.

    >>> js_number(100.0), js_number(1e21), js_number(1e-7), js_number(123456.789), js_number(-0.0)
    ('100', '1e+21', '1e-7', '123456.789', '0')
    """
    if not math.isfinite(x):
        return "null"  # JSON.stringify of NaN and the infinities
    if x == 0:
        return "0"
    sign = "-" if x < 0 else ""
    # Python's repr finds the same shortest round-tripping digits as JavaScript.
    digits_tuple, exponent = Decimal(repr(abs(x))).normalize().as_tuple()[1:]
    digits = "".join(map(str, digits_tuple))
    assert isinstance(exponent, int)
    k = len(digits)
    n = k + exponent  # x = 0.d1d2...dk * 10**n
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * (-n) + digits
    e = n - 1
    exp = f"e{'+' if e >= 0 else '-'}{abs(e)}"
    if k == 1:
        return sign + digits + exp
    return sign + digits[0] + "." + digits[1:] + exp

"""Convex values in Python: the ``Value`` type, ``Int64``, ``UNSET`` and the conversion from input.

The eight Convex types map to Python as ``None`` (null), ``bool``, ``float`` (float64), ``Int64``
(int64), ``str``, ``bytes``, ``list`` and ``dict[str, ...]``. ``to_value`` turns what a user hands
us into that canonical form and says exactly where and why anything is wrong.
"""

from __future__ import annotations

import inspect
from typing import Any, TypeAlias

from pyconvex.errors import InvalidValueError, PyconvexError

MIN_INT64 = -(1 << 63)
MAX_INT64 = (1 << 63) - 1
MAX_SAFE_FLOAT_INT = 1 << 53
MAX_ARRAY_ITEMS = 8192
MAX_OBJECT_FIELDS = 1024
MAX_FIELD_NAME_LENGTH = 1024
MAX_VALUE_NESTING = 64
MAX_DOCUMENT_NESTING = 16
MAX_DOCUMENT_SIZE = 1 << 20


class Int64(int):
    """Convex's 64-bit integer (``v.int64()``, a ``bigint`` in JavaScript).

    A plain Python ``int`` becomes a float64, like in the PyPI client; wrap it to keep it an
    integer::

        >>> Int64(5)
        Int64(5)
        >>> Int64(2**63)
        Traceback (most recent call last):
        ...
        pyconvex.errors.InvalidValueError: Int64(9223372036854775808) is out of range: ...

    Arithmetic on an ``Int64`` gives a plain ``int``; wrap the result again to store it.
    """

    __slots__ = ()

    def __new__(cls, value: Any = 0) -> Int64:
        if type(value) is float and not value.is_integer():
            raise InvalidValueError(f"Int64({value!r}) is not an integer")
        self = super().__new__(cls, value)
        if not MIN_INT64 <= self <= MAX_INT64:
            raise InvalidValueError(
                f"Int64({int(self)}) is out of range: an int64 holds -2**63 .. 2**63-1"
            )
        return self

    def __repr__(self) -> str:
        return f"Int64({int.__repr__(self)})"

    __str__ = int.__repr__


class Unset:
    """The type of ``UNSET``, Convex's ``undefined``; there is only one instance.

    >>> Unset() is UNSET
    True
    """

    __slots__ = ()
    _instance: Unset | None = None

    def __new__(cls) -> Unset:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "UNSET"

    def __reduce__(self) -> str:
        return "UNSET"


UNSET = Unset()
"""Convex's ``undefined``: a missing field.

In ``patch`` a field set to ``UNSET`` is removed; in ``to_value`` an object field whose value is
``UNSET`` is dropped; in an index key it stands for a missing field (it sorts before ``None``)::

    >>> to_value({"a": 1, "b": UNSET})
    {'a': 1.0}
"""

Value: TypeAlias = bool | float | Int64 | str | bytes | list["Value"] | dict[str, "Value"] | None
"""A canonical Convex value (``None | bool | float | Int64 | str | bytes | list | dict``).

    >>> v: Value = {"author": "ada", "likes": 3.0, "tags": ["x"]}
"""


class PathError(PyconvexError):
    """Internal: an invalid value deep inside a container; the path is built while unwinding.

    Building ``.a[3].b`` strings for every element on the happy path would cost; instead each
    container level appends its segment to ``segments`` only when an error passes through.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.segments: list[str] = []

    def at(self, segment: str) -> PathError:
        self.segments.append(segment)
        return self

    def to_error(self, root: str) -> InvalidValueError:
        return InvalidValueError(self.message, root + "".join(reversed(self.segments)))


def field_segment(name: str) -> str:
    """The path segment of an object field: ``.name``."""
    return f".{name}"


def check_field_name(name: object) -> str | None:
    """Why ``name`` is not a valid Convex field name, or None when it is.

    >>> check_field_name("$id")
    'Field name "$id" must not start with "$"'
    """
    if type(name) is not str:
        return (
            f"Field name {name!r} must be a string, got {type(name).__name__}; "
            "convert dictionary keys to str"
        )
    if not name:
        return "Field name must not be empty"
    if len(name) > MAX_FIELD_NAME_LENGTH:
        return (
            f"Field name {name[:40]!r}... is {len(name)} characters long; "
            f"the limit is {MAX_FIELD_NAME_LENGTH}"
        )
    if name[0] == "$":
        return f'Field name "{name}" must not start with "$"'
    if not name.isascii() or not name.isprintable():
        return f"Field name {name!r} must contain only printable ASCII characters (0x20-0x7E)"
    return None


def to_value(obj: object, path: str = "") -> Value:
    """Turn Python input into a canonical Convex value, or raise ``InvalidValueError``.

    ``bool``, ``Int64``, ``float``, ``str`` and ``None`` stay; a plain ``int`` becomes a float64
    (within ±2**53, otherwise use ``Int64``); ``bytearray``/``memoryview`` become ``bytes``;
    tuples become lists; dict fields set to ``UNSET`` are dropped. Containers are always fresh
    copies, so later changes to the input never reach a stored value. ``path`` prefixes the
    location named in errors::

        >>> to_value({"n": 3, "pair": (1, "x"), "gone": UNSET})
        {'n': 3.0, 'pair': [1.0, 'x']}
        >>> to_value({"when": {1, 2}}, path=".args")
        Traceback (most recent call last):
        ...
        pyconvex.errors.InvalidValueError: set {1, 2} is not a Convex value (use a list) at .args.when
    """
    try:
        return _convert(obj, 0)
    except PathError as e:
        raise e.to_error(path) from None


def _convert(obj: object, depth: int) -> Value:
    t = type(obj)
    if t is str or t is float or t is bool or obj is None or t is Int64:
        return obj  # type: ignore[return-value]
    if t is dict:
        return _convert_dict(obj, depth)  # type: ignore[arg-type]
    if t is list or t is tuple:
        return _convert_list(obj, depth)  # type: ignore[arg-type]
    if t is int:
        return _convert_int(obj)  # type: ignore[arg-type]
    if t is bytes:
        return obj  # type: ignore[return-value]
    return _convert_other(obj, depth)


def _convert_int(obj: int) -> float:
    if -MAX_SAFE_FLOAT_INT <= obj <= MAX_SAFE_FLOAT_INT:
        return float(obj)
    raise PathError(
        f"Python int {obj} is too large for a float64 (|x| > 2**53 loses precision; "
        f"use Int64({obj}) for a 64-bit integer)"
        if MIN_INT64 <= obj <= MAX_INT64
        else f"Python int {obj} is too large for a float64 (|x| > 2**53) and for an Int64 "
        "(-2**63 .. 2**63-1)"
    )


def _convert_dict(obj: dict[Any, Any], depth: int) -> dict[str, Value]:
    if depth >= MAX_VALUE_NESTING:
        raise PathError(f"Value is nested more than {MAX_VALUE_NESTING} levels deep")
    if len(obj) > MAX_OBJECT_FIELDS:
        raise PathError(f"Object has {len(obj)} fields; the limit is {MAX_OBJECT_FIELDS}")
    out: dict[str, Value] = {}
    depth += 1
    for key, item in obj.items():
        if type(key) is not str or key not in _GOOD_KEYS:
            key = _check_key(key)
        t = type(item)
        if t is str or t is float or t is bool or item is None or t is Int64:
            out[key] = item
            continue
        if item is UNSET:
            continue
        try:
            out[key] = _convert(item, depth)
        except PathError as e:
            e.segments.append(field_segment(key))
            raise
    return out


# Field names repeat across documents (they come from the schema), so remember the good ones:
# a set lookup is cheaper than re-checking every character of every name.
_GOOD_KEYS: set[str] = set()
_GOOD_KEYS_LIMIT = 50_000


def _check_key(key: object) -> str:
    if isinstance(key, str) and type(key) is not str:
        key = str.__str__(key)  # a StrEnum member or other str subclass: keep its text
    problem = check_field_name(key)
    if problem is not None:
        raise PathError(problem)
    assert type(key) is str
    if len(_GOOD_KEYS) < _GOOD_KEYS_LIMIT:
        _GOOD_KEYS.add(key)
    return key


def is_good_field_name(key: object) -> bool:
    """Whether ``key`` is a valid Convex field name (cached; for hot paths).

    >>> is_good_field_name("body"), is_good_field_name("$x")
    (True, False)
    """
    if type(key) is str and key in _GOOD_KEYS:
        return True
    if check_field_name(key) is not None:
        return False
    if len(_GOOD_KEYS) < _GOOD_KEYS_LIMIT:
        _GOOD_KEYS.add(key)  # type: ignore[arg-type]
    return True


def _convert_list(obj: list[Any] | tuple[Any, ...], depth: int) -> list[Value]:
    if depth >= MAX_VALUE_NESTING:
        raise PathError(f"Value is nested more than {MAX_VALUE_NESTING} levels deep")
    if len(obj) > MAX_ARRAY_ITEMS:
        raise PathError(f"Array has {len(obj)} items; the limit is {MAX_ARRAY_ITEMS}")
    depth += 1
    out: list[Value] = []
    append = out.append
    for i, item in enumerate(obj):
        t = type(item)
        if t is str or t is float or t is bool or item is None or t is Int64:
            append(item)
            continue
        if item is UNSET:
            raise PathError(
                "UNSET (undefined) is not allowed inside an array (use None, Convex's null)"
            ).at(f"[{i}]")
        try:
            append(_convert(item, depth))
        except PathError as e:
            e.segments.append(f"[{i}]")
            raise
    return out


_SUGGESTIONS: dict[str, str] = {
    "set": "use a list",
    "frozenset": "use a list",
    "datetime": "store a float of milliseconds since the epoch (dt.timestamp() * 1000) "
    "or an ISO string",
    "date": "store an ISO string (d.isoformat())",
    "time": "store an ISO string",
    "Decimal": "use float, or str to keep every digit",
    "UUID": "use str(uuid)",
    "complex": "store the real and imaginary parts as two floats",
    "Query": "a query is not its result: finish it with `await ....collect()`, `.take(n)`, "
    "`.first()` or `.unique()`",
}


def _convert_other(obj: object, depth: int) -> Value:
    if isinstance(obj, bool):
        return bool(obj)
    if isinstance(obj, Int64):
        return Int64(int(obj))
    if isinstance(obj, float):
        return float(obj)
    if isinstance(obj, int):
        return _convert_int(int(obj))
    if isinstance(obj, str):
        return str(obj)
    if isinstance(obj, bytes | bytearray | memoryview):
        return bytes(obj)
    if isinstance(obj, dict):
        return _convert_dict(obj, depth)
    if isinstance(obj, list | tuple):
        return _convert_list(obj, depth)
    if obj is UNSET:
        raise PathError(
            "UNSET (undefined) is only allowed as an object field, where it means "
            "'no field' (use None, Convex's null, for an empty value)"
        )
    name = type(obj).__name__
    if inspect.iscoroutine(obj):
        obj.close()  # never awaited: say so here, not in a RuntimeWarning later
        raise PathError(
            f"coroutine {getattr(obj, '__qualname__', '')}() is not a Convex value: did you "
            "forget `await`? (e.g. `return await ctx.db.query(\"tasks\").collect()`)"
        )
    hint = _SUGGESTIONS.get(name, "use None, bool, float, Int64, str, bytes, list or dict")
    raise PathError(f"{name} {_short_repr(obj)} is not a Convex value ({hint})")


def _short_repr(obj: object, limit: int = 60) -> str:
    try:
        text = repr(obj)
    except Exception:  # a broken __repr__ must not hide the real error
        text = f"<{type(obj).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def short_repr(obj: object, limit: int = 60) -> str:
    """``repr(obj)`` cut to ``limit`` characters, for error messages.

    >>> short_repr("x" * 100, 10)
    "'xxxxxx..."
    """
    return _short_repr(obj, limit)


def convex_size(value: Value) -> int:
    """The size of a value by Convex's rule (npm ``getConvexSize``), in bytes.

    null and booleans 1; int64 and float64 9; strings 2 + UTF-8 length; bytes 2 + length;
    arrays 2 + their items; objects 2 + for each field its name length + 1 + value size::

        >>> convex_size({"a": "hi"})
        8
    """
    t = type(value)
    if t is str:
        return 2 + _utf8_len(value)  # type: ignore[arg-type]
    if t is float or t is Int64 or t is int:
        return 9
    if t is dict:
        size = 2
        for key, item in value.items():  # type: ignore[union-attr]
            size += len(key) + 1 + convex_size(item)
        return size
    if t is list:
        size = 2
        for item in value:  # type: ignore[union-attr]
            size += convex_size(item)
        return size
    if value is None or t is bool:
        return 1
    if t is bytes:
        return 2 + len(value)  # type: ignore[arg-type]
    raise InvalidValueError(f"{type(value).__name__} is not a Convex value")


def _utf8_len(s: str) -> int:
    # ASCII strings (the common case) have as many UTF-8 bytes as characters; skip encoding.
    return len(s) if s.isascii() else len(s.encode("utf-8", "surrogatepass"))


def check_document(doc: dict[str, Value], table: str = "") -> int:
    """Check a document against Convex's limits (16 levels deep, 1 MiB); return its size.

    >>> check_document({"body": "hello"}, "messages")
    14
    """
    where = f' in table "{table}"' if table else ""
    try:
        size = _sized(doc, MAX_DOCUMENT_NESTING)
    except _TooDeep:
        raise InvalidValueError(
            f"Document{where} is nested more than {MAX_DOCUMENT_NESTING} levels deep "
            f"(the limit for documents)",
            _too_deep(doc, MAX_DOCUMENT_NESTING) or "",
        ) from None
    if size > MAX_DOCUMENT_SIZE:
        biggest = max(doc, key=lambda k: convex_size(doc[k]), default=None)
        detail = (
            f"; the largest field is .{biggest} ({convex_size(doc[biggest])} bytes)"
            if biggest is not None
            else ""
        )
        raise InvalidValueError(
            f"Document{where} is {size} bytes; the limit is 1 MiB "
            f"({MAX_DOCUMENT_SIZE} bytes){detail}"
        )
    return size


class _TooDeep(PyconvexError):
    pass


def _sized(value: Any, budget: int) -> int:
    """``convex_size`` that also raises ``_TooDeep`` past ``budget`` nested containers."""
    t = type(value)
    if t is dict:
        if budget == 0:
            raise _TooDeep
        size = 2
        for key, item in value.items():
            t2 = type(item)
            if t2 is str:
                size += len(key) + 3 + _utf8_len(item)
            elif t2 is float or t2 is Int64:
                size += len(key) + 10
            else:
                size += len(key) + 1 + _sized(item, budget - 1)
        return size
    if t is list:
        if budget == 0:
            raise _TooDeep
        size = 2
        for item in value:
            t2 = type(item)
            if t2 is str:
                size += 2 + _utf8_len(item)
            elif t2 is float or t2 is Int64:
                size += 9
            else:
                size += _sized(item, budget - 1)
        return size
    return convex_size(value)


def _too_deep(value: Value, budget: int) -> str | None:
    """The path of the first container nested past ``budget`` levels, or None."""
    t = type(value)
    if t is dict:
        if budget == 0:
            return ""
        for key, item in value.items():  # type: ignore[union-attr]
            t2 = type(item)
            if t2 is dict or t2 is list:
                inner = _too_deep(item, budget - 1)
                if inner is not None:
                    return f".{key}{inner}"
    elif t is list:
        if budget == 0:
            return ""
        for i, item in enumerate(value):  # type: ignore[arg-type]
            t2 = type(item)
            if t2 is dict or t2 is list:
                inner = _too_deep(item, budget - 1)
                if inner is not None:
                    return f"[{i}]{inner}"
    return None


_TYPE_NAMES: dict[type, str] = {
    str: "string",
    float: "float64",
    Int64: "int64",
    bool: "boolean",
    type(None): "null",
    bytes: "bytes",
    list: "array",
    dict: "object",
    Unset: "undefined",
}


def value_type_name(value: object) -> str:
    """The Convex type name of ``value`` for messages, or its Python type name.

    >>> value_type_name(3.0), value_type_name(Int64(3)), value_type_name({1, 2})
    ('float64', 'int64', 'set')
    """
    name = _TYPE_NAMES.get(type(value))
    return name if name is not None else type(value).__name__

"""Validators: Convex's ``v``, with the same kinds, the same JSON and helpful errors.

    >>> v.object({"user": v.string(), "emoji": v.string()}).validate({"user": "ada", "emoji": 1.0})
    Traceback (most recent call last):
    ...
    pyconvex.errors.ValidationError: Value at .emoji must be v.string(), got float64 1.0

Every validator has a literal ``kind``, ``is_optional`` (set by ``v.optional``), ``validate``
(returns the normalized value or raises ``ValidationError`` naming the path, what was expected and
what came), ``to_json`` (Convex's validator JSON), a ``repr`` in source form and structural ``==``.
"""

from __future__ import annotations

import copy
from typing import Any, Protocol

from pyconvex.errors import InvalidValueError, ValidationError
from pyconvex.values.encoding import encode_value
from pyconvex.values.ids import id_table_number
from pyconvex.values.value import (
    MAX_SAFE_FLOAT_INT,
    UNSET,
    Int64,
    Value,
    check_field_name,
    is_good_field_name,
    short_repr,
    to_value,
    value_type_name,
)

_WHERE = "\x00WHERE\x00"  # replaced by " at <path>" once the full path is known


class IdResolver(Protocol):
    """Tells which table an ID belongs to, so ``v.id("t")`` can check the table.

    >>> class OneTable:
    ...     def table_for_id(self, id_str: str) -> str | None:
    ...         return "messages"
    >>> isinstance(OneTable(), object)
    True
    """

    def table_for_id(self, id_str: str) -> str | None:
        """The table name of ``id_str``, or None when it is not an ID of this deployment."""
        ...


class _Mismatch(Exception):
    """Internal: a value failed deep inside; each container adds its segment while unwinding."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.segments: list[str] = []

    def at(self, segment: str) -> _Mismatch:
        self.segments.append(segment)
        return self

    def to_error(self, root: str) -> ValidationError:
        path = root + "".join(reversed(self.segments))
        where = f" at {path}" if path else ""
        return ValidationError(self.message.replace(_WHERE, where), path)


def describe(value: object) -> str:
    """How a value appears in error messages: its Convex type and a short repr.

    >>> describe(3.0), describe("x"), describe(None), describe({1})
    ('float64 3.0', "string 'x'", 'null', 'set {1}')
    """
    if value is None:
        return "null"
    if value is UNSET:
        return "undefined (missing)"
    if type(value) is Int64:
        return f"int64 {int(value)}"
    if type(value) is dict:
        return f"object {short_repr(value, 50)}"
    if type(value) is list:
        return f"array {short_repr(value, 50)}"
    return f"{value_type_name(value)} {short_repr(value, 50)}"


def _source_for_message(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 4] + "...)"


class Validator:
    """Base class of every validator; build them with ``v`` rather than directly.

    >>> v.string().kind, v.optional(v.string()).is_optional
    ('string', True)
    """

    __slots__ = ("is_optional",)
    kind: str = ""

    def __init__(self) -> None:
        self.is_optional = False

    def validate(self, value: object, path: str = "", ids: IdResolver | None = None) -> Value:
        """The normalized value, or ``ValidationError`` naming ``path`` (root is ``""``).

        >>> v.float64().validate(3)
        3.0
        """
        try:
            return self._check(value, ids)
        except _Mismatch as e:
            raise e.to_error(path) from None

    def _check(self, value: object, ids: IdResolver | None) -> Value:
        raise NotImplementedError

    def _fail(self, value: object) -> _Mismatch:
        expected = _source_for_message(self._source())
        return _Mismatch(f"Value{_WHERE} must be {expected}, got {describe(value)}")

    def to_json(self) -> dict[str, Any]:
        """Convex's JSON form of this validator (what the real backend stores for schemas).

        >>> v.float64().to_json()
        {'type': 'number'}
        """
        return {"type": self.kind}

    def _source(self) -> str:
        return f"v.{self.kind}()"

    def _params(self) -> tuple[Any, ...]:
        return ()

    def as_optional(self) -> Validator:
        """A copy of this validator marked optional (what ``v.optional`` returns).

        >>> v.string().as_optional()
        v.optional(v.string())
        """
        if self.is_optional:
            return self
        other = copy.copy(self)
        other.is_optional = True
        return other

    def as_required(self) -> Validator:
        """A copy of this validator marked required.

        >>> v.optional(v.string()).as_required()
        v.string()
        """
        if not self.is_optional:
            return self
        other = copy.copy(self)
        other.is_optional = False
        return other

    def __repr__(self) -> str:
        source = self._source()
        return f"v.optional({source})" if self.is_optional else source

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Validator):
            return NotImplemented
        return (
            type(self) is type(other)
            and self.is_optional == other.is_optional
            and self._params() == other._params()
        )

    def __hash__(self) -> int:
        return hash((type(self), self.is_optional, self._params()))


class StringValidator(Validator):
    """``v.string()``: a ``str``.

    >>> v.string().validate("hi")
    'hi'
    """

    __slots__ = ()
    kind = "string"

    def _check(self, value: object, ids: IdResolver | None) -> Value:
        if type(value) is str:
            return value
        if isinstance(value, str):
            return str.__str__(value)
        raise self._fail(value)


class Float64Validator(Validator):
    """``v.float64()`` (alias ``v.number()``): a float; a Python ``int`` up to ±2**53 is converted.

    >>> v.float64().validate(2)
    2.0
    """

    __slots__ = ()
    kind = "float64"

    def _check(self, value: object, ids: IdResolver | None) -> Value:
        t = type(value)
        if t is float:
            return value  # type: ignore[return-value]
        if t is int and -MAX_SAFE_FLOAT_INT <= value <= MAX_SAFE_FLOAT_INT:  # type: ignore[operator]
            return float(value)  # type: ignore[arg-type]
        if isinstance(value, float) and t is not Int64:
            return float(value)
        raise self._fail(value)

    def to_json(self) -> dict[str, Any]:
        return {"type": "number"}


class IntValidator(Validator):
    """The validator of an ``int`` annotation: an integral float64, handed over as a Python ``int``.

    JS numbers and the PyPI client's ints both arrive as float64; this checks they are whole::

        >>> IntValidator().validate(3.0), IntValidator().to_json()
        (3, {'type': 'number'})
    """

    __slots__ = ()
    kind = "float64"

    def _check(self, value: object, ids: IdResolver | None) -> Value:
        t = type(value)
        if t is int:
            return value  # type: ignore[return-value]
        if t is float and value.is_integer():  # type: ignore[attr-defined]
            return int(value)  # type: ignore[call-overload, no-any-return]
        raise self._fail(value)

    def _fail(self, value: object) -> _Mismatch:
        return _Mismatch(
            f"Value{_WHERE} must be int (a whole float64 number), got {describe(value)}"
        )

    def to_json(self) -> dict[str, Any]:
        return {"type": "number"}

    def _source(self) -> str:
        return "int"


class Int64Validator(Validator):
    """``v.int64()`` (alias ``v.bigint()``): an ``Int64``; a plain ``int`` in range is converted.

    >>> v.int64().validate(5)
    Int64(5)
    """

    __slots__ = ()
    kind = "int64"

    def _check(self, value: object, ids: IdResolver | None) -> Value:
        t = type(value)
        if t is Int64:
            return value  # type: ignore[return-value]
        if t is int or (isinstance(value, int) and t is not bool):
            try:
                return Int64(value)
            except InvalidValueError:
                raise _Mismatch(
                    f"Value{_WHERE} must be v.int64(), got {short_repr(value)}, which is outside "
                    "-2**63 .. 2**63-1"
                ) from None
        raise self._fail(value)

    def to_json(self) -> dict[str, Any]:
        return {"type": "bigint"}


class BooleanValidator(Validator):
    """``v.boolean()``: ``True`` or ``False``.

    >>> v.boolean().validate(True)
    True
    """

    __slots__ = ()
    kind = "boolean"

    def _check(self, value: object, ids: IdResolver | None) -> Value:
        if type(value) is bool:
            return value
        raise self._fail(value)


class NullValidator(Validator):
    """``v.null()``: ``None``.

    >>> v.null().validate(None) is None
    True
    """

    __slots__ = ()
    kind = "null"

    def _check(self, value: object, ids: IdResolver | None) -> Value:
        if value is None:
            return None
        raise self._fail(value)


class BytesValidator(Validator):
    """``v.bytes()``: ``bytes`` (a ``bytearray`` or ``memoryview`` is converted).

    >>> v.bytes().validate(bytearray(b"x"))
    b'x'
    """

    __slots__ = ()
    kind = "bytes"

    def _check(self, value: object, ids: IdResolver | None) -> Value:
        if type(value) is bytes:
            return value
        if isinstance(value, bytes | bytearray | memoryview):
            return bytes(value)
        raise self._fail(value)


class AnyValidator(Validator):
    """``v.any()``: any Convex value (converted like ``to_value``).

    >>> v.any().validate({"n": 1})
    {'n': 1.0}
    """

    __slots__ = ()
    kind = "any"

    def _check(self, value: object, ids: IdResolver | None) -> Value:
        t = type(value)
        if t is str or t is float or t is bool or value is None or t is Int64:
            return value  # type: ignore[return-value]
        try:
            return to_value(value)
        except InvalidValueError as e:
            message = str(e.args[0])
            if e.path:
                message = message.removesuffix(f" at {e.path}")
            raise _Mismatch(f"Value{_WHERE} is invalid: {message}").at(e.path) from None


class IdValidator(Validator):
    """``v.id("table")``: a document ID string of that table.

    >>> v.id("messages").validate("kg27rxfv99gzp01wmph0gvt92d6hnvy6")
    'kg27rxfv99gzp01wmph0gvt92d6hnvy6'
    """

    __slots__ = ("table",)
    kind = "id"

    def __init__(self, table: str) -> None:
        super().__init__()
        if type(table) is not str or not table:
            raise TypeError(f"v.id(table) needs a table name string, got {table!r}")
        self.table = table

    def _check(self, value: object, ids: IdResolver | None) -> Value:
        if type(value) is not str:
            if not isinstance(value, str):
                raise self._fail(value)
            value = str.__str__(value)
        assert isinstance(value, str)
        if id_table_number(value) is None:
            raise _Mismatch(
                f"Value{_WHERE} must be {self._source()}, got string {short_repr(value, 50)}, "
                "which is not a document ID"
            )
        if ids is not None:
            table = ids.table_for_id(value)
            if table != self.table:
                got = f'an ID of table "{table}"' if table else "an ID of no known table"
                raise _Mismatch(
                    f"Value{_WHERE} must be {self._source()}, got {got}: {short_repr(value)}"
                )
        return value

    def to_json(self) -> dict[str, Any]:
        return {"type": "id", "tableName": self.table}

    def _source(self) -> str:
        return f'v.id("{self.table}")'

    def _params(self) -> tuple[Any, ...]:
        return (self.table,)


_LITERAL_TYPES = (str, bool, float, Int64)


class LiteralValidator(Validator):
    """``v.literal(x)``: exactly one string, number, Int64 or boolean.

    >>> v.literal("draft").validate("draft"), v.literal(3).validate(3)
    ('draft', 3.0)
    """

    __slots__ = ("value",)
    kind = "literal"

    def __init__(self, value: str | bool | float | Int64) -> None:
        super().__init__()
        t = type(value)
        if t is int:
            value = float(value)
        elif t not in _LITERAL_TYPES:
            raise TypeError(
                f"v.literal(value) needs a str, float, int, Int64 or bool, got {short_repr(value)}"
            )
        self.value: str | bool | float | Int64 = value

    def _check(self, value: object, ids: IdResolver | None) -> Value:
        target = self.value
        t = type(value)
        if t is type(target) and value == target:
            return target
        if t is int and type(target) is float and value == target:
            return target
        if t is not type(target) and isinstance(value, str) and value == target:
            return target  # a StrEnum member with the literal's text
        raise self._fail(value)

    def to_json(self) -> dict[str, Any]:
        return {"type": "literal", "value": encode_value(self.value)}

    def _source(self) -> str:
        if type(self.value) is str:
            return f"v.literal({_quote(self.value)})"
        return f"v.literal({self.value!r})"

    def _params(self) -> tuple[Any, ...]:
        return (type(self.value), self.value)


def _quote(text: str) -> str:
    """A string as a double-quoted literal, like it is written in source."""
    r = repr(text)
    if r.startswith("'") and '"' not in text:
        return f'"{r[1:-1]}"'
    return r


class ArrayValidator(Validator):
    """``v.array(item)``: a list (or tuple) whose every item matches ``item``.

    >>> v.array(v.float64()).validate((1, 2.5))
    [1.0, 2.5]
    """

    __slots__ = ("item",)
    kind = "array"

    def __init__(self, item: Validator) -> None:
        super().__init__()
        _require_validator(item, "v.array(item)")
        self.item = item

    def _check(self, value: object, ids: IdResolver | None) -> Value:
        if type(value) is not list and not isinstance(value, list | tuple):
            raise self._fail(value)
        check = self.item._check
        out: list[Value] = []
        append = out.append
        for i, element in enumerate(value):
            try:
                append(check(element, ids))
            except _Mismatch as e:
                raise e.at(f"[{i}]") from None
        return out

    def to_json(self) -> dict[str, Any]:
        return {"type": "array", "value": self.item.to_json()}

    def _source(self) -> str:
        return f"v.array({self.item!r})"

    def _params(self) -> tuple[Any, ...]:
        return (self.item,)


class ObjectValidator(Validator):
    """``v.object({...})``: a dict with exactly these fields (optional ones may be missing).

    Fields set to ``UNSET`` count as missing and are dropped::

        >>> shape = v.object({"user": v.string(), "note": v.optional(v.string())})
        >>> shape.validate({"user": "ada", "note": UNSET})
        {'user': 'ada'}
        >>> shape.fields["note"].is_optional
        True
    """

    __slots__ = ("_required", "fields")
    kind = "object"

    def __init__(self, fields: dict[str, Validator]) -> None:
        super().__init__()
        for name, field in fields.items():
            problem = check_field_name(name)
            if problem is not None:
                raise TypeError(f"v.object(): {problem}")
            _require_validator(field, f'v.object() field "{name}"')
        self.fields: dict[str, Validator] = dict(fields)
        self._required = tuple(name for name, f in self.fields.items() if not f.is_optional)

    def _check(self, value: object, ids: IdResolver | None) -> Value:
        if not isinstance(value, dict):
            raise self._fail(value)
        fields = self.fields
        out: dict[str, Value] = {}
        for key, item in value.items():
            validator = fields.get(key)
            if validator is None:
                if item is UNSET:
                    continue
                raise self._unexpected(key)
            if item is UNSET:
                continue
            try:
                out[key] = validator._check(item, ids)
            except _Mismatch as e:
                raise e.at(f".{key}") from None
        if len(out) != len(fields):
            for name in self._required:
                if name not in out:
                    raise _Mismatch(
                        f'Object{_WHERE} is missing the required field "{name}" ({fields[name]!r})'
                    )
        return out

    def _unexpected(self, key: object) -> _Mismatch:
        allowed = ", ".join(f'"{name}"' for name in self.fields)
        shown = f'"{key}"' if type(key) is str else short_repr(key)
        return _Mismatch(
            f"Object{_WHERE} has an unexpected field {shown} "
            + (f"(allowed fields: {allowed})" if allowed else "(it allows no fields)")
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "object",
            "value": {
                name: {"fieldType": field.to_json(), "optional": field.is_optional}
                for name, field in self.fields.items()
            },
        }

    def _source(self) -> str:
        inner = ", ".join(f"{_quote(name)}: {field!r}" for name, field in self.fields.items())
        return f"v.object({{{inner}}})"

    def _params(self) -> tuple[Any, ...]:
        return (frozenset(self.fields.items()),)


_RECORD_KEY_KINDS = ("string", "id")


class RecordValidator(Validator):
    """``v.record(keys, values)``: a dict with any field names matching ``keys``.

    >>> v.record(v.string(), v.float64()).validate({"a": 1})
    {'a': 1.0}
    """

    __slots__ = ("keys", "values")
    kind = "record"

    def __init__(self, keys: Validator, values: Validator) -> None:
        super().__init__()
        _require_validator(keys, "v.record(keys, values) keys")
        _require_validator(values, "v.record(keys, values) values")
        if not _is_string_like(keys):
            raise TypeError(
                f"v.record() keys must be v.string(), v.id(...), a string v.literal(...) or a "
                f"union of those, got {keys!r}"
            )
        if keys.is_optional or values.is_optional:
            raise TypeError("v.record() keys and values cannot be optional")
        self.keys = keys
        self.values = values

    def _check(self, value: object, ids: IdResolver | None) -> Value:
        if not isinstance(value, dict):
            raise self._fail(value)
        check_key = self.keys._check
        check_value = self.values._check
        out: dict[str, Value] = {}
        for key, item in value.items():
            if item is UNSET:
                continue
            if not is_good_field_name(key):
                raise _Mismatch(
                    f"Object{_WHERE} has an invalid field name: {check_field_name(key)}"
                )
            try:
                checked_key = check_key(key, ids)
            except _Mismatch:
                raise _Mismatch(
                    f"Field name {_quote(key)} of the record{_WHERE} must be {self.keys!r}"
                ) from None
            try:
                out[checked_key] = check_value(item, ids)  # type: ignore[index]
            except _Mismatch as e:
                raise e.at(f".{key}") from None
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "record",
            "keys": self.keys.to_json(),
            "values": {"fieldType": self.values.to_json(), "optional": False},
        }

    def _source(self) -> str:
        return f"v.record({self.keys!r}, {self.values!r})"

    def _params(self) -> tuple[Any, ...]:
        return (self.keys, self.values)


def _is_string_like(validator: Validator) -> bool:
    if validator.kind in _RECORD_KEY_KINDS:
        return True
    if isinstance(validator, LiteralValidator):
        return type(validator.value) is str
    if isinstance(validator, UnionValidator):
        return all(_is_string_like(m) for m in validator.members)
    return False


class UnionValidator(Validator):
    """``v.union(a, b, ...)``: a value matching any member (the first match wins).

    >>> v.union(v.string(), v.null()).validate(None) is None
    True
    """

    __slots__ = ("members",)
    kind = "union"

    def __init__(self, *members: Validator) -> None:
        super().__init__()
        for member in members:
            _require_validator(member, "v.union() member")
        self.members: tuple[Validator, ...] = members

    def _check(self, value: object, ids: IdResolver | None) -> Value:
        failures: list[tuple[Validator, _Mismatch]] = []
        for member in self.members:
            try:
                return member._check(value, ids)
            except _Mismatch as e:
                failures.append((member, e))
        # When exactly one member has the value's shape (the only object member for a dict, ...),
        # its deeper error says more than "must be v.union(...)".
        shaped = [(m, e) for m, e in failures if _same_shape(m, value)]
        if len(shaped) == 1:
            raise shaped[0][1]
        raise self._fail(value)

    def to_json(self) -> dict[str, Any]:
        return {"type": "union", "value": [m.to_json() for m in self.members]}

    def _source(self) -> str:
        return f"v.union({', '.join(repr(m) for m in self.members)})"

    def _params(self) -> tuple[Any, ...]:
        return self.members


def _same_shape(validator: Validator, value: object) -> bool:
    kind = validator.kind
    if isinstance(value, dict):
        return kind == "object" or kind == "record"
    if isinstance(value, list | tuple):
        return kind == "array"
    return False


def _require_validator(candidate: object, where: str) -> None:
    if not isinstance(candidate, Validator):
        raise TypeError(f"{where} must be a validator such as v.string(), got {candidate!r}")


class V:
    """The validator builder, used as ``v`` (``from pyconvex import v``).

    >>> v.object({"channel": v.id("channels"), "limit": v.optional(v.float64())})
    v.object({"channel": v.id("channels"), "limit": v.optional(v.float64())})
    """

    __slots__ = ()

    def string(self) -> StringValidator:
        """``v.string()``: a string. ``v.string().to_json() == {"type": "string"}``."""
        return StringValidator()

    def float64(self) -> Float64Validator:
        """``v.float64()``: a float64 (JSON ``{"type": "number"}``)."""
        return Float64Validator()

    def number(self) -> Float64Validator:
        """``v.number()``: the same as ``v.float64()``."""
        return Float64Validator()

    def int64(self) -> Int64Validator:
        """``v.int64()``: an ``Int64`` (JSON ``{"type": "bigint"}``)."""
        return Int64Validator()

    def bigint(self) -> Int64Validator:
        """``v.bigint()``: the same as ``v.int64()``."""
        return Int64Validator()

    def boolean(self) -> BooleanValidator:
        """``v.boolean()``: ``True`` or ``False``."""
        return BooleanValidator()

    def null(self) -> NullValidator:
        """``v.null()``: ``None``."""
        return NullValidator()

    def bytes(self) -> BytesValidator:
        """``v.bytes()``: ``bytes``."""
        return BytesValidator()

    def id(self, table: str) -> IdValidator:
        """``v.id("messages")``: an ID of a document in that table."""
        return IdValidator(table)

    def literal(self, value: str | bool | float | Int64) -> LiteralValidator:
        """``v.literal("draft")``: exactly that value."""
        return LiteralValidator(value)

    def array(self, item: Validator) -> ArrayValidator:
        """``v.array(v.string())``: a list of items matching ``item``."""
        return ArrayValidator(item)

    def object(
        self, fields: dict[str, Validator] | None = None, /, **more: Validator
    ) -> ObjectValidator:
        """``v.object({"a": v.string()})`` or ``v.object(a=v.string())``: a dict of these fields."""
        merged = dict(fields) if fields else {}
        merged.update(more)
        return ObjectValidator(merged)

    def record(self, keys: Validator, values: Validator) -> RecordValidator:
        """``v.record(v.string(), v.float64())``: a dict with any keys matching ``keys``."""
        return RecordValidator(keys, values)

    def union(self, *members: Validator) -> UnionValidator:
        """``v.union(v.string(), v.null())``: a value matching any member."""
        return UnionValidator(*members)

    def optional(self, inner: Validator) -> Validator:
        """``v.optional(v.string())``: an object field that may be missing (or ``UNSET``)."""
        _require_validator(inner, "v.optional(inner)")
        return inner.as_optional()

    def any(self) -> AnyValidator:
        """``v.any()``: any Convex value."""
        return AnyValidator()

    def __repr__(self) -> str:
        return "v"


v = V()
"""The validator builder: ``v.string()``, ``v.object({...})``, ``v.optional(...)``, ...

    >>> v.array(v.string())
    v.array(v.string())
"""

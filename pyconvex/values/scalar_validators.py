"""The scalar validators: string, float64 (and ``int``), int64, boolean, null, bytes, any, id, literal.

>>> from pyconvex.values.validators import v
>>> v.float64().validate(2)
2.0
"""

from __future__ import annotations

import json
import math
from typing import Any

from pyconvex.errors import InvalidValueError
from pyconvex.values.encoding import encode_value
from pyconvex.values.error_text import rust_float
from pyconvex.values.ids import id_table_number
from pyconvex.values.validator import (
    WHERE,
    IdResolver,
    Mismatch,
    MismatchKind,
    Validator,
    describe,
    quote,
)
from pyconvex.values.value import MAX_SAFE_FLOAT_INT, Int64, Value, short_repr, to_value


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
    narrowed = "whole numbers only: an int parameter in Python"

    def _check(self, value: object, ids: IdResolver | None) -> Value:
        t = type(value)
        if t is int:
            return value  # type: ignore[return-value]
        if t is float and value.is_integer():  # type: ignore[attr-defined]
            return int(value)  # type: ignore[call-overload, no-any-return]
        raise self._fail(value)

    def _fail(self, value: object) -> Mismatch:
        return Mismatch(
            f"Value{WHERE} must be int (a whole float64 number), got {describe(value)}",
            self,
            value,
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
                raise Mismatch(
                    f"Value{WHERE} must be v.int64(), got {short_repr(value)}, which is outside "
                    "-2**63 .. 2**63-1",
                    self,
                    value,
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
            raise Mismatch(f"Value{WHERE} is invalid: {message}", self, value).at(e.path) from None


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
            raise Mismatch(
                f"Value{WHERE} must be {self._source()}, got string {short_repr(value, 50)}, "
                "which is not a document ID",
                self,
                value,
            )
        if ids is not None:
            table = ids.table_for_id(value)
            if table != self.table:
                got = f'an ID of table "{table}"' if table else "an ID of no known table"
                kind: MismatchKind = (
                    "no_match" if not table else "system_table" if table[0] == "_" else "table"
                )
                raise Mismatch(
                    f"Value{WHERE} must be {self._source()}, got {got}: {short_repr(value)}",
                    self,
                    value,
                    kind,
                    table=table,
                )
        return value

    def to_json(self) -> dict[str, Any]:
        return {"type": "id", "tableName": self.table}

    def _source(self) -> str:
        return f'v.id("{self.table}")'

    def display(self) -> str:
        return self._source()

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
        mismatch = self._fail(value)
        mismatch.kind = "literal"
        raise mismatch

    def to_json(self) -> dict[str, Any]:
        return {"type": "literal", "value": encode_value(self.value)}

    def _source(self) -> str:
        if type(self.value) is str:
            return f"v.literal({quote(self.value)})"
        return f"v.literal({self.value!r})"

    def display(self) -> str:
        value = self.value
        if type(value) is str:
            shown = json.dumps(value, ensure_ascii=False)
        elif type(value) is bool:
            shown = "true" if value else "false"
        elif type(value) is Int64:
            shown = "<bigint>"
        else:
            assert isinstance(value, float)
            shown = rust_float(value) if math.isfinite(value) else "<number>"
        return f"v.literal({shown})"

    def _params(self) -> tuple[Any, ...]:
        return (type(self.value), self.value)

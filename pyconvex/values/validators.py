"""Validators: Convex's ``v``, with the same kinds, the same JSON and Convex's error texts
followed by pyconvex's explanation.

    >>> v.object({"user": v.string(), "emoji": v.string()}).validate({"user": "ada", "emoji": 1.0})
    Traceback (most recent call last):
    ...
    pyconvex.errors.ValidationError: Value does not match validator.
    Path: .emoji
    Value: 1.0
    Validator: v.string()
    Value at .emoji must be v.string(), got float64 1.0

Every validator has a literal ``kind``, ``is_optional`` (set by ``v.optional``), ``validate``
(returns the normalized value or raises ``ValidationError`` naming the path, what was expected and
what came), ``to_json`` (Convex's validator JSON), a ``repr`` in source form and structural ``==``.
"""

from __future__ import annotations

from pyconvex.values.compound_validators import (
    ArrayValidator,
    ObjectValidator,
    RecordValidator,
    UnionValidator,
)
from pyconvex.values.scalar_validators import (
    AnyValidator,
    BooleanValidator,
    BytesValidator,
    Float64Validator,
    IdValidator,
    Int64Validator,
    IntValidator,
    LiteralValidator,
    NullValidator,
    StringValidator,
)
from pyconvex.values.validator import IdResolver, Validator, require_validator
from pyconvex.values.value import Int64

__all__ = [
    "AnyValidator",
    "ArrayValidator",
    "BooleanValidator",
    "BytesValidator",
    "Float64Validator",
    "IdResolver",
    "IdValidator",
    "Int64Validator",
    "IntValidator",
    "LiteralValidator",
    "NullValidator",
    "ObjectValidator",
    "RecordValidator",
    "StringValidator",
    "UnionValidator",
    "V",
    "Validator",
    "v",
]


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
        require_validator(inner, "v.optional(inner)")
        return inner.as_optional()

    def any(self) -> AnyValidator:
        """``v.any()``: any Convex value."""
        return AnyValidator()

    def __repr__(self) -> str:
        return "v"


def _no_such_validator(self: V, name: str) -> object:
    import difflib

    known = [n for n in dir(V) if not n.startswith("_")]
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    hint = f" Did you mean v.{close[0]}()?" if close else ""
    raise AttributeError(
        f"v has no validator {name!r}.{hint} The validators: "
        + ", ".join(f"v.{n}()" for n in sorted(known))
        + "."
    )


# Set outside the class body: mypy must not see a __getattr__, or it would accept v.strng().
V.__getattr__ = _no_such_validator  # type: ignore[attr-defined]

v = V()
"""The validator builder: ``v.string()``, ``v.object({...})``, ``v.optional(...)``, ...

    >>> v.array(v.string())
    v.array(v.string())
"""

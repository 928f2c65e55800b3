"""The validator base class: what every kind shares (validation with paths, JSON, repr, ``==``).

Concrete kinds live in ``scalar_validators`` and ``compound_validators``; build them with ``v``
(``validators.py``), as in Convex where ``validator.ts`` holds the shared machinery.

    >>> from pyconvex.values.validators import v
    >>> isinstance(v.string(), Validator)
    True
"""

from __future__ import annotations

import copy
from typing import Any, Literal, Protocol

from pyconvex.errors import PyconvexError, ValidationError
from pyconvex.values.error_text import display_value
from pyconvex.values.value import UNSET, Int64, Value, short_repr, value_type_name

WHERE = "\x00WHERE\x00"  # replaced by " at <path>" once the full path is known


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


def _number_hint(validator: Validator, value: object) -> str:
    """The usual slip between Convex's two number types, explained."""
    if validator.kind == "int64" and type(value) is float and value.is_integer():
        return (
            " (a plain number is a float64; an int64 is Int64(n) in Python, n as a BigInt "
            '(5n) in JavaScript, {"$integer": ...} in JSON — or declare v.float64())'
        )
    if validator.kind == "float64" and type(value) is Int64:
        return (
            " (that is an int64: a BigInt such as 5n in JavaScript, Int64(5) in Python; pass "
            "a plain number instead)"
        )
    return ""


#: Which of Convex's validation errors a mismatch is (its first line).
MismatchKind = Literal["no_match", "missing", "extra", "literal", "table", "system_table"]


class Mismatch(PyconvexError):
    """Internal: a value failed deep inside; each container adds its segment while unwinding.

    ``message`` is pyconvex's explanation (with ``WHERE`` where the path goes); ``kind``,
    ``value``, ``validator``, ``field`` and ``table`` are what Convex's own error text shows.
    Convex's path can differ from ours (a record's ``.keys()`` / ``.values()``; a union
    reports itself, not the member that came closest), so it is kept apart.
    """

    def __init__(
        self,
        message: str,
        validator: Validator,
        value: object,
        kind: MismatchKind = "no_match",
        field: str | None = None,
        table: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.segments: list[str] = []
        self.validator = validator
        self.value = value
        self.kind: MismatchKind = kind
        self.field = field
        self.table = table
        self.convex_segments: list[str] = []

    def at(self, segment: str, convex_segment: str | None = None) -> Mismatch:
        self.segments.append(segment)
        self.convex_segments.append(segment if convex_segment is None else convex_segment)
        return self

    def reported_as(self, validator: Validator, value: object) -> Mismatch:
        """Convex reports ``validator`` (a union) failing on ``value`` as a whole; pyconvex's
        explanation keeps the closer member's reason."""
        self.validator, self.value, self.kind = validator, value, "no_match"
        self.field = self.table = None
        self.convex_segments = []
        return self

    def to_error(self, root: str) -> ValidationError:
        path = root + "".join(reversed(self.segments))
        where = f" at {path}" if path else ""
        detail = self.message.replace(WHERE, where)
        convex = self.convex_text("".join(reversed(self.convex_segments)))
        return ValidationError(f"{convex}\n{detail}", path, convex=convex, detail=detail)

    def convex_text(self, path: str) -> str:
        """Convex's text of this error (``ValidationError``'s display in the backend)."""
        context = f"Path: {path}" if path else ""
        kind, value, field = self.kind, self.value, self.field
        validator = self.validator.display()
        if kind == "missing":
            return (
                f"Object is missing the required field `{field}`. Consider wrapping the field "
                f"validator in `v.optional(...)` if this is expected.\n{context}\n"
                f"Object: {display_value(value)}\nValidator: {validator}"
            )
        if kind == "extra":
            return (
                f"Object contains extra field `{field}` that is not in the validator.\n"
                f"{context}\nObject: {display_value(value)}\nValidator: {validator}"
            )
        if kind == "literal":
            return (
                f"`{display_value(value)}` does not match literal validator `{validator}`.{context}"
            )
        if kind == "table":
            return (
                f'Found ID "{value}" from table `{self.table}`, which does not match the table '
                f"name in validator `{validator}`.{context}"
            )
        if kind == "system_table":
            return (
                f'Found ID "{value}" from a system table, which does not match the table name '
                f"in validator `{validator}`.{context}"
            )
        narrowed = self.validator.narrowed
        if narrowed:  # Convex's type with a rule of pyconvex's: the value failed the rule
            validator = f"{validator} ({narrowed})"
        return (
            f"Value does not match validator.\n{context}\nValue: {display_value(value)}\n"
            f"Validator: {validator}"
        )


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


def source_for_message(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 4] + "...)"


class Validator:
    """Base class of every validator; build them with ``v`` rather than directly.

    >>> v.string().kind, v.optional(v.string()).is_optional
    ('string', True)
    """

    __slots__ = ("is_optional",)
    kind: str = ""
    #: A rule of pyconvex's on top of Convex's type ``kind`` (``int``: whole numbers only),
    #: said beside the validator in Convex's text of a mismatch.
    narrowed: str = ""

    def __init__(self) -> None:
        self.is_optional = False

    def validate(self, value: object, path: str = "", ids: IdResolver | None = None) -> Value:
        """The normalized value, or ``ValidationError`` naming ``path`` (root is ``""``).

        >>> v.float64().validate(3)
        3.0
        """
        try:
            return self._check(value, ids)
        except Mismatch as e:
            raise e.to_error(path) from None

    def _check(self, value: object, ids: IdResolver | None) -> Value:
        raise NotImplementedError

    def _fail(self, value: object) -> Mismatch:
        expected = source_for_message(self._source())
        return Mismatch(
            f"Value{WHERE} must be {expected}, got {describe(value)}{_number_hint(self, value)}",
            self,
            value,
        )

    def display(self) -> str:
        """This validator as Convex writes it in error messages (``v.object({a: v.string()})``:
        field names bare and sorted).

        >>> v.object({"b": v.optional(v.float64()), "a": v.id("users")}).display()
        'v.object({a: v.id("users"), b: v.optional(v.float64())})'
        """
        return f"v.{self.kind}()"

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


def quote(text: str) -> str:
    """A string as a double-quoted literal, like it is written in source.

    >>> print(quote("hi"))
    "hi"
    """
    r = repr(text)
    if r.startswith("'") and '"' not in text:
        return f'"{r[1:-1]}"'
    return r


def require_validator(candidate: object, where: str) -> None:
    """Raise ``TypeError`` naming ``where`` unless ``candidate`` is a validator."""
    if not isinstance(candidate, Validator):
        raise TypeError(f"{where} must be a validator such as v.string(), got {candidate!r}")

"""Index range expressions: ``q.eq(...)`` on a prefix, then at most one lower and one upper
bound on the next field — compiled to a ``[lo, hi)`` range of index keys."""

from __future__ import annotations

from typing import Any

from pyconvex.errors import SchemaError
from pyconvex.values import UNSET, encode_key, encode_key_part, key_successor, to_value


def _key_value(value: Any, what: str) -> Any:
    # UNSET (a missing field) is a valid index key: q.eq("f", UNSET) matches documents
    # without "f", as Convex's q.eq("f", undefined) does.
    return value if value is UNSET else to_value(value, what)


class IndexRangeBuilder:
    """The ``q`` handed to ``with_index(name, lambda q: ...)``.

    >>> q = IndexRangeBuilder("by_channel", ("channel", "_creationTime"))
    >>> q = q.eq("channel", "c1").gt("_creationTime", 0)
    """

    def __init__(self, index: str, fields: tuple[str, ...]) -> None:
        self._index = index
        self._fields = fields
        self._eq: list[Any] = []
        self._bound_field: str | None = None
        self._lower: tuple[Any, bool] | None = None  # (value, inclusive)
        self._upper: tuple[Any, bool] | None = None

    def _next_field(self, op: str, field: str) -> None:
        if self._bound_field is not None:
            if field != self._bound_field:
                raise SchemaError(
                    f"Index {self._index}: after a range bound on {self._bound_field!r}, "
                    f"{op}({field!r}) is not allowed; bounds go on one field, after the eq()s."
                )
            return
        pos = len(self._eq)
        if pos >= len(self._fields):
            raise SchemaError(
                f"Index {self._index} has fields {list(self._fields)}; all are already matched, "
                f"so {op}({field!r}) has nothing to apply to."
            )
        expected = self._fields[pos]
        if field != expected:
            raise SchemaError(
                f"Index {self._index} has fields {list(self._fields)}: {op}() must name "
                f"{expected!r} next (fields are matched in order), got {field!r}."
            )

    def eq(self, field: str, value: Any) -> IndexRangeBuilder:
        """Match documents whose ``field`` equals ``value`` (fields in index order)."""
        if self._bound_field is not None:
            raise SchemaError(
                f"Index {self._index}: eq({field!r}) must come before range bounds (gt/gte/lt/lte)."
            )
        self._next_field("eq", field)
        self._eq.append(_key_value(value, f"eq({field!r})"))
        return self

    def _bound(
        self, op: str, field: str, value: Any, lower: bool, inclusive: bool
    ) -> IndexRangeBuilder:
        self._next_field(op, field)
        if (lower and self._lower is not None) or (not lower and self._upper is not None):
            raise SchemaError(
                f"Index {self._index}: only one {'lower' if lower else 'upper'} bound is allowed "
                f"on {field!r}."
            )
        self._bound_field = field
        item = (_key_value(value, f"{op}({field!r})"), inclusive)
        if lower:
            self._lower = item
        else:
            self._upper = item
        return self

    def gt(self, field: str, value: Any) -> IndexRangeBuilder:
        """Lower bound, exclusive."""
        return self._bound("gt", field, value, True, False)

    def gte(self, field: str, value: Any) -> IndexRangeBuilder:
        """Lower bound, inclusive."""
        return self._bound("gte", field, value, True, True)

    def lt(self, field: str, value: Any) -> IndexRangeBuilder:
        """Upper bound, exclusive."""
        return self._bound("lt", field, value, False, False)

    def lte(self, field: str, value: Any) -> IndexRangeBuilder:
        """Upper bound, inclusive."""
        return self._bound("lte", field, value, False, True)

    @property
    def eq_values(self) -> list[Any]:
        return self._eq

    @property
    def has_bounds(self) -> bool:
        return self._lower is not None or self._upper is not None

    def key_range(self) -> tuple[bytes, bytes | None]:
        """The ``[lo, hi)`` range of index keys (``hi`` None: unbounded)."""
        prefix = encode_key(self._eq) if self._eq else b""
        lo = prefix
        hi = key_successor(prefix) if prefix else None
        if self._lower is not None:
            value, inclusive = self._lower
            part = prefix + encode_key_part(value)
            lo = part if inclusive else key_successor(part)
        if self._upper is not None:
            value, inclusive = self._upper
            part = prefix + encode_key_part(value)
            hi = key_successor(part) if inclusive else part
        return lo, hi

"""Filter expressions: the ``q`` of ``.filter(lambda q: q.eq(q.field("a"), 1))``.

Comparisons use Convex's total order across types, so ``q.lt(q.field("n"), 5)`` on a document
without ``n`` is true (a missing field sorts lowest), exactly as Convex.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from pyconvex.errors import InvalidValueError
from pyconvex.runtime.store.index import Document, field_value
from pyconvex.values import UNSET, Int64, compare_values, to_value


class Expression:
    """A filter expression node; ``evaluate(doc)`` gives its value."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[Document], Any]) -> None:
        self.fn = fn

    def evaluate(self, doc: Document) -> Any:
        return self.fn(doc)


def _expr(x: Any) -> Expression:
    if isinstance(x, Expression):
        return x
    # UNSET compares as a missing field (Convex's undefined): q.eq(q.field("f"), UNSET).
    value = x if x is UNSET else to_value(x, "filter operand")
    return Expression(lambda _doc: value)


def _arith(name: str, a: Any, b: Any, op: Callable[[Any, Any], Any]) -> Any:
    if type(a) is Int64 and type(b) is Int64:
        return Int64(op(int(a), int(b)))
    if type(a) is float and type(b) is float:
        return op(a, b)
    raise InvalidValueError(
        f"filter {name}() needs two float64 or two int64 operands, got {type(a).__name__} and "
        f"{type(b).__name__}."
    )


class FilterBuilder:
    """Builds filter expressions; passed to the ``filter`` callback."""

    def __getitem__(self, name: object) -> Any:
        raise TypeError(
            f"In .filter(lambda q: ...), q builds an expression, it is not the document: "
            f"write q.field({name!r}) instead of q[{name!r}], e.g. "
            f".filter(lambda q: q.eq(q.field({name!r}), value))."
        )

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise AttributeError(
            f"In .filter(lambda q: ...), q has no {name!r}: it builds expressions from "
            f"q.field(path), q.eq/neq/lt/lte/gt/gte, q.and_/or_/not_ and q.add/sub/mul/div/mod/"
            f"neg; for a document field write q.field({name!r})."
        )

    def field(self, path: str) -> Expression:
        """The value of a (dotted) field of the document; missing fields are undefined."""
        parts = tuple(path.split("."))
        return Expression(lambda doc: field_value(doc, parts))

    def _cmp(self, a: Any, b: Any, test: Callable[[int], bool]) -> Expression:
        ea, eb = _expr(a), _expr(b)
        return Expression(lambda doc: test(compare_values(ea.fn(doc), eb.fn(doc))))

    def eq(self, a: Any, b: Any) -> Expression:
        return self._cmp(a, b, lambda c: c == 0)

    def neq(self, a: Any, b: Any) -> Expression:
        return self._cmp(a, b, lambda c: c != 0)

    def lt(self, a: Any, b: Any) -> Expression:
        return self._cmp(a, b, lambda c: c < 0)

    def lte(self, a: Any, b: Any) -> Expression:
        return self._cmp(a, b, lambda c: c <= 0)

    def gt(self, a: Any, b: Any) -> Expression:
        return self._cmp(a, b, lambda c: c > 0)

    def gte(self, a: Any, b: Any) -> Expression:
        return self._cmp(a, b, lambda c: c >= 0)

    def and_(self, *exprs: Any) -> Expression:
        es = [_expr(e) for e in exprs]
        return Expression(lambda doc: all(e.fn(doc) is True for e in es))

    def or_(self, *exprs: Any) -> Expression:
        es = [_expr(e) for e in exprs]
        return Expression(lambda doc: any(e.fn(doc) is True for e in es))

    def not_(self, expr: Any) -> Expression:
        e = _expr(expr)
        return Expression(lambda doc: e.fn(doc) is not True)

    def add(self, a: Any, b: Any) -> Expression:
        ea, eb = _expr(a), _expr(b)
        return Expression(lambda d: _arith("add", ea.fn(d), eb.fn(d), lambda x, y: x + y))

    def sub(self, a: Any, b: Any) -> Expression:
        ea, eb = _expr(a), _expr(b)
        return Expression(lambda d: _arith("sub", ea.fn(d), eb.fn(d), lambda x, y: x - y))

    def mul(self, a: Any, b: Any) -> Expression:
        ea, eb = _expr(a), _expr(b)
        return Expression(lambda d: _arith("mul", ea.fn(d), eb.fn(d), lambda x, y: x * y))

    def div(self, a: Any, b: Any) -> Expression:
        ea, eb = _expr(a), _expr(b)
        return Expression(lambda d: _arith("div", ea.fn(d), eb.fn(d), _divide))

    def mod(self, a: Any, b: Any) -> Expression:
        ea, eb = _expr(a), _expr(b)
        return Expression(lambda d: _arith("mod", ea.fn(d), eb.fn(d), _modulo))

    def neg(self, a: Any) -> Expression:
        ea = _expr(a)
        return Expression(lambda d: _arith("neg", ea.fn(d), ea.fn(d), lambda x, _y: -x))


def _divide(x: Any, y: Any) -> Any:
    if isinstance(x, float):
        if y == 0:
            return float("nan") if x == 0 or x != x else float("inf") * (1 if x > 0 else -1)
        return x / y
    if y == 0:
        raise InvalidValueError("filter div(): int64 division by zero.")
    q = abs(x) // abs(y)
    return q if (x >= 0) == (y >= 0) else -q


def _modulo(x: Any, y: Any) -> Any:
    if isinstance(x, float):
        return math.fmod(x, y) if y != 0 else float("nan")
    if y == 0:
        raise InvalidValueError("filter mod(): int64 modulo by zero.")
    return x - _divide(x, y) * y


def matches(expr: Any, doc: Document) -> bool:
    """Whether a filter callback's result keeps ``doc`` (only ``True`` keeps it)."""
    if isinstance(expr, Expression):
        return expr.fn(doc) is True
    return expr is True

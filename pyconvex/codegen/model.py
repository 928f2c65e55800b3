"""What a generated module is made of, before libcst renders it: type expressions and plans.

Plans are small frozen dataclasses, so equal plans render to equal code and
:mod:`~pyconvex.codegen.python_source` can memoize them: on a dev-loop save only what changed is
rendered again.

    >>> t = union(Sub("list", (Name("str"),)), Name("None"))
    >>> source(t), width(t)
    ('list[str] | None', 16)
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from pyconvex.values.validator import quote


@dataclass(frozen=True, slots=True)
class Name:
    """A name in a type expression: ``str``, ``None``, ``MessagesDoc``."""

    name: str


@dataclass(frozen=True, slots=True)
class Str:
    """A string literal (inside ``Literal[...]``)."""

    value: str


@dataclass(frozen=True, slots=True)
class Sub:
    """A subscript: ``list[X]``, ``Literal["a", "b"]``, ``Id[Literal["t"]]``."""

    base: str
    args: tuple[TypeExpr, ...]


@dataclass(frozen=True, slots=True)
class Union:
    """``A | B | C``."""

    members: tuple[TypeExpr, ...]


TypeExpr = Name | Str | Sub | Union

ANY = Name("Any")
NONE = Name("None")


def literal(*values: str | bool) -> Sub:
    """``Literal[...]`` of strings and booleans."""
    return Sub("Literal", tuple(Str(x) if isinstance(x, str) else Name(repr(x)) for x in values))


def id_of(table: str) -> Sub:
    """``Id[Literal["table"]]``: the spelling mypy accepts without a plugin."""
    return Sub("Id", (literal(table),))


def union(*members: TypeExpr) -> TypeExpr:
    """``A | B``, flattened, without repeats; all ``Literal`` members merge into the first one.

    >>> source(union(literal("a"), Name("None"), literal("b"), Name("None")))
    'Literal["a", "b"] | None'
    """
    flat: list[TypeExpr] = []
    for m in members:
        flat.extend(m.members if isinstance(m, Union) else (m,))
    out: list[TypeExpr] = []
    literals: list[TypeExpr] = []
    literal_at = -1
    for m in flat:
        if isinstance(m, Sub) and m.base == "Literal":
            if literal_at < 0:
                literal_at = len(out)
                out.append(m)
            literals.extend(a for a in m.args if a not in literals)
        elif m not in out:
            out.append(m)
    if literal_at >= 0:
        out[literal_at] = Sub("Literal", tuple(literals))
    if ANY in out:
        return ANY
    return out[0] if len(out) == 1 else Union(tuple(out))


@lru_cache(maxsize=65536)
def source(t: TypeExpr) -> str:
    """The expression as source on one line."""
    if isinstance(t, Name):
        return t.name
    if isinstance(t, Str):
        return quote(t.value)
    if isinstance(t, Sub):
        return f"{t.base}[{', '.join(source(a) for a in t.args)}]"
    return " | ".join(source(m) for m in t.members)


def width(t: TypeExpr) -> int:
    """How many columns the expression takes on one line."""
    return len(source(t))


def names_in(t: TypeExpr, into: set[str]) -> set[str]:
    """Add every name the expression uses (to import them) to ``into``."""
    if isinstance(t, Name):
        into.add(t.name)
    elif isinstance(t, Sub):
        into.add(t.base)
        for a in t.args:
            names_in(a, into)
    elif isinstance(t, Union):
        for m in t.members:
            names_in(m, into)
    return into


# -- statements ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Field:
    """One key of a TypedDict (``required=False``: ``NotRequired[...]``)."""

    key: str
    type: TypeExpr
    required: bool = True


@dataclass(frozen=True, slots=True)
class TypedDictDef:
    """``class Name(base, total=...)`` with fields (or the functional form when keys need it)."""

    name: str
    fields: tuple[Field, ...]
    base: str = "TypedDict"
    total: bool = True
    doc: str | None = None


@dataclass(frozen=True, slots=True)
class Alias:
    """``Name: TypeAlias = type``."""

    name: str
    type: TypeExpr


@dataclass(frozen=True, slots=True)
class Method:
    """A stub ``def name(self, p: T, /) -> R: ...`` (parameters are positional-only)."""

    name: str
    params: tuple[tuple[str, TypeExpr], ...]
    returns: TypeExpr
    is_async: bool = False
    decorator: str | None = None


@dataclass(frozen=True, slots=True)
class ClassDef:
    """A class of annotations and stub methods (``Protocol`` classes, api namespaces).

    ``methods`` is grouped: a blank line between groups, none inside (overloads of one name).
    """

    name: str
    bases: tuple[str, ...]
    doc: str | None
    fields: tuple[tuple[str, TypeExpr], ...] = ()
    methods: tuple[tuple[Method, ...], ...] = ()


@dataclass(frozen=True, slots=True)
class Assign:
    """``target: annotation = value`` where value is a dotted name."""

    target: str
    annotation: TypeExpr
    value: str


@dataclass(frozen=True, slots=True)
class ApiAssign:
    """``api: _Api = build_api("public", {"module:fn": "query", ...})``."""

    target: str
    annotation: str
    visibility: str
    functions: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class AllList:
    """``__all__ = ["a", "b"]``."""

    names: tuple[str, ...]


Statement = TypedDictDef | Alias | ClassDef | Assign | ApiAssign | AllList


@dataclass(frozen=True, slots=True)
class ModulePlan:
    """A whole generated module: its docstring and runs of statements (``blocks``, separated
    by a blank line). ``sources`` says which module each name comes from; the names the
    statements use are imported from there. Imports from ``type_only`` modules go under
    ``if TYPE_CHECKING:``, and aliases using them are quoted, so that the module imports even
    when those modules have changed under it.
    """

    doc: str
    blocks: tuple[tuple[Statement, ...], ...]
    sources: tuple[tuple[str, str], ...]
    type_only: tuple[str, ...] = ()

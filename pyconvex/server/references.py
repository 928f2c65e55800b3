"""Function references: what ``api.messages.send`` and ``internal.jobs.cleanup`` are.

``convex/_generated/api.py`` builds ``api`` and ``internal`` with :func:`build_api` and types
them with :class:`FunctionReference`, so ``ctx.run_mutation(api.messages.send, {...})`` checks
its arguments under mypy. At run time a reference is just its path::

    >>> ref = FunctionReference("messages:send", "mutation", "public")
    >>> ref.path, str(ref)
    ('messages:send', 'messages:send')
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Generic, TypedDict, TypeVar

from pyconvex.server.functions import FunctionType, Visibility

KindT = TypeVar("KindT", bound=FunctionType)
ArgsT = TypeVar("ArgsT")
ReturnsT = TypeVar("ReturnsT", covariant=True)  # phantom: only ever produced


class NoArgs(TypedDict):
    """The arguments of a function that takes none (its reference's args may be left out)."""


class FunctionReference(Generic[KindT, ArgsT, ReturnsT]):
    """A reference to one function: ``path`` ("module:name"), ``kind`` and ``visibility``.

    Typed by kind, arguments (a TypedDict) and return type::

        send: FunctionReference[Literal["mutation"], SendArgs, Id[Literal["messages"]]]

    Wherever a function is named (``run_query``, the scheduler, clients) a reference works like
    its ``"module:name"`` string; ``str(ref)`` is that string. ``kind`` and ``visibility`` are
    None for a reference to a function codegen has not seen (yet).
    """

    __slots__ = ("kind", "path", "visibility")

    def __init__(
        self, path: str, kind: FunctionType | None = None, visibility: Visibility | None = None
    ) -> None:
        self.path = path
        self.kind = kind
        self.visibility = visibility

    def __str__(self) -> str:
        return self.path

    def __repr__(self) -> str:
        if self.kind is None:
            return f"<reference {self.path}>"
        return f"<{self.visibility} {self.kind} reference {self.path}>"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FunctionReference):
            return NotImplemented
        return self.path == other.path

    def __hash__(self) -> int:
        return hash(self.path)


class _AnyReference(FunctionReference[Any, Any, Any]):
    """A reference by attribute path to a function codegen has not seen, like Convex's
    ``anyApi``: ``internal.jobs.cleanup`` works before ``api.py`` is regenerated for
    ``jobs.py``. Its attributes go one level deeper (``api.admin.users.ban``)."""

    __slots__ = ("_parts",)

    def __init__(self, parts: tuple[str, ...]) -> None:
        super().__init__("/".join(parts[:-1]) + ":" + parts[-1])
        self._parts = parts

    def __getattr__(self, name: str) -> _AnyReference:
        if name.startswith("_"):
            raise AttributeError(name)
        return _AnyReference((*self._parts, name))


class ApiNamespace:
    """One level of ``api`` / ``internal``: attributes are modules or function references.

    >>> api = build_api("public", {"admin/users:ban": "mutation"})
    >>> api.admin.users.ban
    <public mutation reference admin/users:ban>

    An attribute codegen does not know yet still gives a reference (as Convex's ``anyApi``
    does), so module-level references to new functions import before codegen has run again;
    calling one that does not exist fails with "function not found".
    """

    __slots__ = ("_members", "_parts")

    def __init__(
        self,
        parts: tuple[str, ...],
        members: dict[str, ApiNamespace | FunctionReference[Any, Any, Any]],
    ) -> None:
        self._parts = parts  # ("api", "admin", "users")
        self._members = members

    def __getattr__(self, name: str) -> Any:
        member = self._members.get(name)
        if member is not None:
            return member
        if name.startswith("_"):
            raise AttributeError(name)
        return _AnyReference((*self._parts[1:], name))

    def __dir__(self) -> list[str]:
        return sorted(self._members)

    def __repr__(self) -> str:
        return f"<{'.'.join(self._parts)}: {', '.join(sorted(self._members))}>"


def build_api(visibility: Visibility, functions: Mapping[str, FunctionType]) -> Any:
    """The ``api`` (or ``internal``) object over ``{"module:name": kind}``.

    Module paths with ``/`` become nested attributes: ``"admin/users:ban"`` is
    ``api.admin.users.ban``. Generated code types the result; here it is ``Any``.
    """
    root_name = "api" if visibility == "public" else "internal"
    tree: dict[str, Any] = {}
    for path, kind in sorted(functions.items()):
        module, _, name = path.partition(":")
        node = tree
        for part in module.split("/"):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ValueError(f"{root_name}: {path} clashes with the function {child.path}.")
            node = child
        if name in node:
            raise ValueError(f"{root_name}: {path} clashes with the module of the same name.")
        node[name] = FunctionReference(path, kind, visibility)
    return _namespace((root_name,), tree)


def _namespace(parts: tuple[str, ...], tree: dict[str, Any]) -> ApiNamespace:
    members = {
        name: _namespace((*parts, name), child) if isinstance(child, dict) else child
        for name, child in tree.items()
    }
    return ApiNamespace(parts, members)

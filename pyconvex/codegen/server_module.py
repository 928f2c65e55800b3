"""``_generated/server.py``: the decorators and the ``ctx`` types, bound to the schema's tables.

``DatabaseReader.get`` and ``.query`` have one overload per table (keyed by the table's
``Id[Literal[...]]`` or its name), so ``await ctx.db.get(message_id)`` is a ``MessagesDoc | None``
and ``ctx.db.query("mesages")`` is a type error. Without a schema, documents are dicts.
"""

from __future__ import annotations

from pyconvex.codegen.data_model import ANY_DOC, TableTypes
from pyconvex.codegen.model import (
    ANY,
    NONE,
    Alias,
    AllList,
    Assign,
    ClassDef,
    Method,
    ModulePlan,
    Name,
    Statement,
    Sub,
    TypeExpr,
    id_of,
    literal,
    union,
)

SOURCES = (
    ("Any", "typing"),
    ("Literal", "typing"),
    ("Never", "typing"),
    ("Protocol", "typing"),
    ("TypeAlias", "typing"),
    ("overload", "typing"),
    ("Id", "pyconvex"),
    ("functions", "pyconvex.server"),
    ("ActionCtx", "pyconvex.server.ctx"),
    ("Auth", "pyconvex.server.ctx"),
    ("FunctionDecorator", "pyconvex.server.ctx"),
    ("Scheduler", "pyconvex.server.ctx"),
    ("StorageReader", "pyconvex.server.ctx"),
    ("StorageWriter", "pyconvex.server.ctx"),
    ("UserIdentity", "pyconvex.server.ctx"),
    ("QueryInitializer", "pyconvex.server.db"),
    ("SystemReader", "pyconvex.server.db"),
)

DECORATORS = (
    ("query", "QueryCtx"),
    ("mutation", "MutationCtx"),
    ("action", "ActionCtx"),
    ("internal_query", "QueryCtx"),
    ("internal_mutation", "MutationCtx"),
    ("internal_action", "ActionCtx"),
)

DOC = """Decorators and ``ctx`` types for the functions in convex/, typed to its schema::

    @mutation
    async def send(ctx: MutationCtx, body: str) -> None:
        await ctx.db.insert("messages", {"body": body})

Import them relatively: ``from ._generated.server import MutationCtx, mutation``.
"""


def _overloads(
    name: str, per_table: list[tuple[tuple[tuple[str, TypeExpr], ...], TypeExpr]], is_async: bool
) -> tuple[Method, ...]:
    decorator = "overload" if len(per_table) > 1 else None
    return tuple(
        Method(name, params, returns, is_async, decorator) for params, returns in per_table
    )


def _typed_methods(tables: list[TableTypes]) -> tuple[tuple[tuple[Method, ...], ...], ...]:
    reader = (
        _overloads(
            "get", [((("id", id_of(t.table)),), union(Name(t.doc), NONE)) for t in tables], True
        ),
        _overloads(
            "query", [((("table", literal(t.table)),), Name(t.query)) for t in tables], False
        ),
        _overloads(
            "normalize_id",
            [
                ((("table", literal(t.table)), ("id", Name("str"))), union(id_of(t.table), NONE))
                for t in tables
            ],
            False,
        ),
    )
    writer = (
        _overloads(
            "insert",
            [
                ((("table", literal(t.table)), ("doc", Name(t.fields))), id_of(t.table))
                for t in tables
            ],
            True,
        ),
        _overloads(
            "patch",
            [((("id", id_of(t.table)), ("fields", Name(t.patch))), NONE) for t in tables],
            True,
        ),
        _overloads(
            "replace",
            [((("id", id_of(t.table)), ("doc", Name(t.fields))), NONE) for t in tables],
            True,
        ),
        _overloads("delete", [((("id", id_of(t.table)),), NONE) for t in tables], True),
    )
    return reader, writer


def _schemaless_methods() -> tuple[tuple[tuple[Method, ...], ...], ...]:
    any_id = Sub("Id", (ANY,))
    text = Name("str")
    query = Sub("QueryInitializer", (ANY_DOC, text, text))
    reader = (
        (Method("get", (("id", text),), union(ANY_DOC, NONE), True),),
        (Method("query", (("table", text),), query),),
        (Method("normalize_id", (("table", text), ("id", text)), union(any_id, NONE)),),
    )
    writer = (
        (Method("insert", (("table", text), ("doc", ANY_DOC)), any_id, True),),
        (Method("patch", (("id", text), ("fields", ANY_DOC)), NONE, True),),
        (Method("replace", (("id", text), ("doc", ANY_DOC)), NONE, True),),
        (Method("delete", (("id", text),), NONE, True),),
    )
    return reader, writer


def _property(name: str, t: TypeExpr) -> Method:
    return Method(name, (), t, decorator="property")


def server_plan(tables: list[TableTypes]) -> ModulePlan:
    """The plan of ``server.py`` for these tables (none: schemaless)."""
    reader_groups, writer_groups = _typed_methods(tables) if tables else _schemaless_methods()
    aliases: list[Statement] = []
    for t in tables:
        search: TypeExpr = literal(*t.search_indexes) if t.search_indexes else Name("Never")
        query = Sub("QueryInitializer", (Name(t.doc), literal(*t.indexes), search))
        aliases.append(Alias(t.query, query))
    reader = ClassDef(
        "DatabaseReader",
        ("Protocol",),
        "``ctx.db`` in a query: read documents (queries are read-only).",
        methods=((_property("system", Name("SystemReader")),), *reader_groups),
    )
    writer = ClassDef(
        "DatabaseWriter",
        ("DatabaseReader", "Protocol"),
        "``ctx.db`` in a mutation: the reader plus insert, patch, replace and delete.",
        methods=writer_groups,
    )
    query_ctx = ClassDef(
        "QueryCtx",
        ("Protocol",),
        "``ctx`` in a query: ``db`` (reader), ``auth``, ``storage``.",
        methods=(
            (
                _property("db", Name("DatabaseReader")),
                _property("auth", Name("Auth")),
                _property("storage", Name("StorageReader")),
            ),
        ),
    )
    mutation_ctx = ClassDef(
        "MutationCtx",
        ("Protocol",),
        "``ctx`` in a mutation: ``db`` (writer), ``auth``, ``storage``, ``scheduler``.",
        methods=(
            (
                _property("db", Name("DatabaseWriter")),
                _property("auth", Name("Auth")),
                _property("storage", Name("StorageWriter")),
                _property("scheduler", Name("Scheduler")),
            ),
        ),
    )
    decorators = tuple(
        Assign(name, Sub("FunctionDecorator", (Name(ctx),)), f"functions.{name}")
        for name, ctx in DECORATORS
    )
    exported = sorted(
        [
            "ActionCtx",
            "DatabaseReader",
            "DatabaseWriter",
            "MutationCtx",
            "QueryCtx",
            "UserIdentity",
            *(name for name, _ in DECORATORS),
        ]
    )
    blocks: list[tuple[Statement, ...]] = [(AllList(tuple(exported)),)]
    if aliases:
        blocks.append(tuple(aliases))
    blocks.append((reader, writer, query_ctx, mutation_ctx))
    blocks.append(decorators)
    sources = SOURCES + tuple(
        (name, ".data_model") for t in tables for name in (t.doc, t.fields, t.patch)
    )
    return ModulePlan(DOC, tuple(blocks), sources)

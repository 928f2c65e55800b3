"""The dashboard's built-in functions (``_system/dashboard:*``), internal: the admin key only.

The dashboard (``pyconvex dev``'s ``/dashboard``) is a client of the deployment's own sync
protocol: it subscribes to these queries, so what it shows moves as the data does, and it
writes documents through these mutations, which go through ``ctx.db`` like any mutation — the
schema's validators, the size limits and the table's indexes apply the same way::

    _system/dashboard:tables     -> [{"name", "documents", "system"}]
    _system/dashboard:page       {table, paginationOpts, order?, filters?} -> one page
    _system/dashboard:schema     -> {"schema": <schema JSON> | None, "indexes": {...}}
    _system/dashboard:jobs       -> {"jobs": [...], "crons": [...]}
    _system/dashboard:files      {paginationOpts} -> one page of _storage
    _system/dashboard:env        -> [{"name", "value"}]
    _system/dashboard:insert     {table, document} -> id
    _system/dashboard:replace    {id, document}
    _system/dashboard:delete     {ids}
"""

from __future__ import annotations

from typing import Any

from pyconvex.errors import ConvexError, PyconvexError
from pyconvex.runtime.functions.cron_runner import CRON_TABLE
from pyconvex.runtime.functions.env_vars import ENV_TABLE
from pyconvex.runtime.functions.file_storage import STORAGE_TABLE
from pyconvex.runtime.functions.scheduler import SCHEDULED_TABLE
from pyconvex.runtime.query.transaction import Transaction
from pyconvex.runtime.store.memory import BY_CREATION_TIME, SYSTEM_TABLES
from pyconvex.server.functions import FunctionDefinition, internal_mutation, internal_query
from pyconvex.server.pagination import pagination_opts_validator
from pyconvex.values.validators import v

PREFIX = "_system/dashboard"
#: The system tables the dashboard browses like user tables (read-only).
BROWSABLE_SYSTEM_TABLES = (STORAGE_TABLE, SCHEDULED_TABLE)
#: Filter operators, as the dashboard names them.
OPERATORS = ("eq", "neq", "lt", "lte", "gt", "gte")
#: Scheduled jobs and files listed at most.
MAX_LISTED = 200


def _tx(ctx: Any) -> Transaction:
    tx: Transaction = ctx.db._tx
    return tx


def _user_tables(tx: Transaction) -> list[str]:
    stored = {t.name for t in tx.store.tables.values() if not t.is_system}
    return sorted(stored | set(tx.schema.declared_tables()))


async def _tables(ctx: Any) -> list[dict[str, Any]]:
    """Every user table (stored or declared) and the browsable system tables, with counts.

    The whole of each table is in the read set, so counts move as documents come and go.
    """
    tx = _tx(ctx)
    out = []
    for name in [*_user_tables(tx), *BROWSABLE_SYSTEM_TABLES]:
        tx.reads.add_range(name, BY_CREATION_TIME, None, None)
        table = tx.table(name)
        out.append(
            {
                "name": name,
                "documents": 0 if table is None else len(table.docs),
                "system": name.startswith("_"),
            }
        )
    return out


def _check_table(tx: Transaction, table: str) -> None:
    if table in BROWSABLE_SYSTEM_TABLES or table in _user_tables(tx):
        return
    known = ", ".join(_user_tables(tx)) or "none"
    raise ConvexError(f"No table {table!r} in this deployment (tables: {known}).")


async def _page(
    ctx: Any,
    table: str,
    paginationOpts: dict[str, Any],
    order: str = "desc",
    filters: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """One page of ``table`` by creation time, with ``filters`` (``{field, op, value}``:
    the field's value compared with Convex's order) applied."""
    tx = _tx(ctx)
    _check_table(tx, table)
    if order not in ("asc", "desc"):
        raise ConvexError(f"order must be 'asc' or 'desc', got {order!r}.")
    conditions = []
    for f in filters or []:
        if f["op"] not in OPERATORS:
            raise ConvexError(
                f"Unknown filter operator {f['op']!r}; use one of {', '.join(OPERATORS)}."
            )
        if not f["field"]:
            raise ConvexError("A filter needs a field name (a.b for a nested field).")
        conditions.append(f)
    query = ctx.db.system.query(table) if table.startswith("_") else ctx.db.query(table)
    query = query.order(order)
    if conditions:

        def keep(q: Any) -> Any:
            tests = [getattr(q, c["op"])(q.field(c["field"]), c["value"]) for c in conditions]
            return q.and_(*tests)

        query = query.filter(keep)
    try:
        page: dict[str, Any] = await query.paginate(paginationOpts)
    except (PyconvexError, ValueError) as e:
        raise ConvexError(str(e)) from None
    return page


async def _schema(ctx: Any) -> dict[str, Any]:
    """The schema in force (None without ``schema.py``) and the indexes each table has."""
    tx = _tx(ctx)
    definition = getattr(tx.schema, "definition", None)
    indexes: dict[str, list[dict[str, Any]]] = {}
    for name in _user_tables(tx):
        indexes[name] = [
            {"name": spec.name, "fields": [*spec.fields, "_creationTime"]}
            for spec in tx.schema.index_specs(name)
        ]
        indexes[name].extend(
            {"name": search.name, "searchField": search.search_field,
             "filterFields": list(search.filter_fields)}
            for search in tx.schema.search_indexes(name).values()
        )  # fmt: skip
    return {
        "schema": None if definition is None else definition.to_json(),
        "indexes": indexes,
    }


def _recent(tx: Transaction, table: str, limit: int) -> list[dict[str, Any]]:
    tx.reads.add_range(table, BY_CREATION_TIME, None, None)
    if tx.table(table) is None:
        return []
    out = []
    for _, doc in tx.scan(table, BY_CREATION_TIME, None, None, True):
        out.append(dict(doc))
        if len(out) >= limit:
            break
    return out


async def _jobs(ctx: Any) -> dict[str, Any]:
    """The newest scheduled jobs (pending ones first) and the cron jobs with their next run."""
    tx = _tx(ctx)
    jobs = _recent(tx, SCHEDULED_TABLE, MAX_LISTED)
    jobs.sort(key=lambda job: job.get("state", {}).get("kind") not in ("pending", "inProgress"))
    crons = sorted(_recent(tx, CRON_TABLE, MAX_LISTED), key=lambda c: str(c.get("name")))
    return {"jobs": jobs, "crons": crons}


async def _files(ctx: Any, paginationOpts: dict[str, Any]) -> dict[str, Any]:
    """One page of stored files, newest first."""
    page: dict[str, Any] = (
        await ctx.db.system.query(STORAGE_TABLE).order("desc").paginate(paginationOpts)
    )
    return page


async def _env(ctx: Any) -> list[dict[str, Any]]:
    """The environment variables set with ``pyconvex env`` (or the dashboard), by name."""
    docs = _recent(_tx(ctx), ENV_TABLE, 10_000)
    return sorted(({"name": d["name"], "value": d["value"]} for d in docs), key=lambda e: e["name"])


def _user_fields(document: dict[str, Any], what: str) -> dict[str, Any]:
    system = sorted(k for k in document if k.startswith("_"))
    if system:
        raise ConvexError(
            f"{what}: fields starting with '_' are the system's ({', '.join(system)}); leave "
            "them out, they are kept as they are."
        )
    return document


async def _insert(ctx: Any, table: str, document: dict[str, Any]) -> str:
    """A new document in ``table``, checked against the schema as ``db.insert`` checks it."""
    if table.startswith("_") or table in SYSTEM_TABLES:
        raise ConvexError(f"{table} is a system table: the dashboard only reads it.")
    try:
        doc_id: str = await ctx.db.insert(table, _user_fields(document, "insert"))
    except (PyconvexError, ValueError) as e:
        raise ConvexError(str(e)) from None
    return doc_id


async def _replace(ctx: Any, id: str, document: dict[str, Any]) -> None:
    """The document ``id`` replaced by ``document`` (its system fields kept)."""
    try:
        await ctx.db.replace(id, _user_fields(document, "replace"))
    except (PyconvexError, ValueError) as e:
        raise ConvexError(str(e)) from None


async def _delete(ctx: Any, ids: list[str]) -> int:
    """Delete the documents ``ids`` (all or none); returns how many."""
    try:
        for doc_id in ids:
            await ctx.db.delete(doc_id)
    except (PyconvexError, ValueError) as e:
        raise ConvexError(str(e)) from None
    return len(ids)


_FILTER = v.object({"field": v.string(), "op": v.string(), "value": v.any()})


def _define(kind: Any, name: str, handler: Any, args: dict[str, Any]) -> FunctionDefinition:
    definition: FunctionDefinition = kind(args=args)(handler)
    definition.path = f"{PREFIX}:{name}"
    return definition


_DEFINITIONS = [
    _define(internal_query, "tables", _tables, {}),
    _define(
        internal_query,
        "page",
        _page,
        {
            "table": v.string(),
            "paginationOpts": pagination_opts_validator,
            "order": v.optional(v.string()),
            "filters": v.optional(v.array(_FILTER)),
        },
    ),
    _define(internal_query, "schema", _schema, {}),
    _define(internal_query, "jobs", _jobs, {}),
    _define(internal_query, "files", _files, {"paginationOpts": pagination_opts_validator}),
    _define(internal_query, "env", _env, {}),
    _define(internal_mutation, "insert", _insert, {"table": v.string(), "document": v.any()}),
    _define(internal_mutation, "replace", _replace, {"id": v.string(), "document": v.any()}),
    _define(internal_mutation, "delete", _delete, {"ids": v.array(v.string())}),
]

#: The dashboard's built-in functions, by path.
FUNCTIONS: dict[str, FunctionDefinition] = {d.path: d for d in _DEFINITIONS}

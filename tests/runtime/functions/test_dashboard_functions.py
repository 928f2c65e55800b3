"""The dashboard's built-in functions: tables with counts, pages with filters, the schema and
its indexes, jobs, files and variables; writes checked like any mutation's; admin key only."""

from __future__ import annotations

from typing import Any

from support.deployment import DeploymentFactory, failure_message, ok

from pyconvex.runtime.functions.env_vars import SET_PATH

SCHEMA = """
    from pyconvex import define_schema, define_table, v

    schema = define_schema({
        "messages": define_table({"author": v.string(), "body": v.string(),
                                  "n": v.float64()})
            .index("by_author", ["author"])
            .search_index("search_body", search_field="body", filter_fields=["author"]),
        "empty": define_table({"x": v.string()}),
    })
"""
MESSAGES = """
    from pyconvex import mutation


    @mutation
    async def seed(ctx, count: int) -> None:
        for i in range(count):
            await ctx.db.insert("messages", {"author": "ann" if i % 2 else "bob",
                                             "body": f"message {i}", "n": float(i)})
"""

FILES = {"schema.py": SCHEMA, "messages.py": MESSAGES}
FIRST = {"numItems": 5, "cursor": None}


async def admin(dep: Any, name: str, args: dict[str, Any] | None = None) -> Any:
    path = f"_system/dashboard:{name}"
    if name in ("insert", "replace", "delete"):
        return await dep.run_mutation(path, args or {}, allow_internal=True)
    return dep.run_query(path, args or {}, allow_internal=True)


async def test_tables_list_user_and_system_tables_with_counts(
    deployment: DeploymentFactory,
) -> None:
    dep = await deployment(FILES)
    ok(await dep.run_mutation("messages:seed", {"count": 3}))
    tables = ok(await admin(dep, "tables"))
    assert tables == [
        {"name": "empty", "documents": 0, "system": False},
        {"name": "messages", "documents": 3, "system": False},
        {"name": "_storage", "documents": 0, "system": True},
        {"name": "_scheduled_functions", "documents": 0, "system": True},
    ]


async def test_page_paginates_newest_first_and_filters_by_field(
    deployment: DeploymentFactory,
) -> None:
    dep = await deployment(FILES)
    ok(await dep.run_mutation("messages:seed", {"count": 12}))
    first = ok(await admin(dep, "page", {"table": "messages", "paginationOpts": FIRST}))
    assert [d["n"] for d in first["page"]] == [11.0, 10.0, 9.0, 8.0, 7.0]
    assert first["isDone"] is False
    second = ok(
        await admin(
            dep,
            "page",
            {"table": "messages", "paginationOpts": {"numItems": 5,
                                                     "cursor": first["continueCursor"]}},
        )
    )  # fmt: skip
    assert [d["n"] for d in second["page"]] == [6.0, 5.0, 4.0, 3.0, 2.0]
    ann = ok(
        await admin(
            dep,
            "page",
            {
                "table": "messages",
                "order": "asc",
                "paginationOpts": FIRST,
                "filters": [
                    {"field": "author", "op": "eq", "value": "ann"},
                    {"field": "n", "op": "gte", "value": 4.0},
                ],
            },
        )
    )
    assert [d["n"] for d in ann["page"]] == [5.0, 7.0, 9.0, 11.0]
    assert ann["isDone"] is True


async def test_page_refuses_unknown_tables_and_operators(deployment: DeploymentFactory) -> None:
    dep = await deployment(FILES)
    missing = failure_message(await admin(dep, "page", {"table": "nope", "paginationOpts": FIRST}))
    assert "No table 'nope'" in missing and "messages" in missing
    bad_op = failure_message(
        await admin(
            dep,
            "page",
            {
                "table": "messages",
                "paginationOpts": FIRST,
                "filters": [{"field": "n", "op": "like", "value": 1.0}],
            },
        )
    )
    assert "Unknown filter operator 'like'" in bad_op and "eq" in bad_op


async def test_writes_go_through_the_schema(deployment: DeploymentFactory) -> None:
    dep = await deployment(FILES)
    doc = {"author": "ann", "body": "hi", "n": 1.0}
    doc_id = ok(await admin(dep, "insert", {"table": "messages", "document": doc}))
    wrong = failure_message(
        await admin(dep, "insert", {"table": "messages", "document": {"author": "ann"}})
    )
    assert "body" in wrong  # the schema's own complaint names the missing field
    ok(await admin(dep, "replace", {"id": doc_id, "document": {**doc, "body": "edited"}}))
    page = ok(await admin(dep, "page", {"table": "messages", "paginationOpts": FIRST}))
    assert [(d["_id"], d["body"]) for d in page["page"]] == [(doc_id, "edited")]
    bad = failure_message(
        await admin(dep, "replace", {"id": doc_id, "document": {**doc, "n": "one"}})
    )
    assert "n" in bad
    system = failure_message(
        await admin(dep, "replace", {"id": doc_id, "document": {**doc, "_id": doc_id}})
    )
    assert "_id" in system and "leave them out" in system
    refused = failure_message(await admin(dep, "insert", {"table": "_storage", "document": {}}))
    assert "system table" in refused
    assert ok(await admin(dep, "delete", {"ids": [doc_id]})) == 1
    page = ok(await admin(dep, "page", {"table": "messages", "paginationOpts": FIRST}))
    assert page["page"] == []


async def test_schema_indexes_and_env(deployment: DeploymentFactory) -> None:
    dep = await deployment(FILES)
    described = ok(await admin(dep, "schema"))
    tables = {t["tableName"]: t for t in described["schema"]["tables"]}
    assert set(tables) == {"empty", "messages"}
    assert described["indexes"]["messages"] == [
        {"name": "by_author", "fields": ["author", "_creationTime"]},
        {"name": "search_body", "searchField": "body", "filterFields": ["author"]},
    ]
    ok(await dep.run_mutation(SET_PATH, {"name": "B", "value": "2"}, allow_internal=True))
    ok(await dep.run_mutation(SET_PATH, {"name": "A", "value": "1"}, allow_internal=True))
    assert ok(await admin(dep, "env")) == [
        {"name": "A", "value": "1"},
        {"name": "B", "value": "2"},
    ]
    assert ok(await admin(dep, "jobs")) == {"jobs": [], "crons": []}
    files = ok(await admin(dep, "files", {"paginationOpts": FIRST}))
    assert files["page"] == [] and files["isDone"] is True


async def test_clients_cannot_reach_them(deployment: DeploymentFactory) -> None:
    dep = await deployment(FILES)
    message = failure_message(dep.run_query("_system/dashboard:tables", {}))
    assert "Could not find public function" in message
    refused = await dep.run_mutation(
        "_system/dashboard:insert", {"table": "messages", "document": {}}
    )
    assert "Could not find public function" in failure_message(refused)

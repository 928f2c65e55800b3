"""ctx.db writes and reads: insert/patch/replace/delete, normalize_id, system tables, schema
validation of writes (with the path of the bad value), schemaless tables and
schema_validation=False."""

from __future__ import annotations

from typing import Any

import pytest
from support.deployment import failure_message, ok

from pyconvex import Int64
from pyconvex.values import decode_id

SCHEMA = """
from pyconvex import define_schema, define_table, v

schema = define_schema({
    "channels": define_table({"name": v.string()}),
    # Any document goes here (a schema declares every table written to).
    "anything": define_table(v.any()),
    "scratch": define_table(v.any()),
    "messages": define_table({
        "channel": v.id("channels"),
        "body": v.string(),
        "reactions": v.array(v.object({"user": v.string(), "emoji": v.string()})),
        "edited_at": v.optional(v.float64()),
    }),
})
"""

DB = """
from pyconvex import UNSET, mutation, query, v


@mutation(args={"table": v.string(), "doc": v.any()})
async def insert(ctx, table, doc):
    return await ctx.db.insert(table, doc)


@mutation(args={"id": v.string(), "fields": v.any()})
async def patch(ctx, id, fields):
    await ctx.db.patch(id, fields)
    return await ctx.db.get(id)


@mutation(args={"id": v.string(), "field": v.string()})
async def unset(ctx, id, field):
    await ctx.db.patch(id, {field: UNSET})
    return await ctx.db.get(id)


@mutation(args={"id": v.string(), "doc": v.any()})
async def replace(ctx, id, doc):
    await ctx.db.replace(id, doc)
    return await ctx.db.get(id)


@mutation(args={"id": v.string()})
async def delete(ctx, id):
    await ctx.db.delete(id)


@mutation(args={"kind": v.string()})
async def insert_bad(ctx, kind):
    deep = {}
    for _ in range(20):
        deep = {"nest": deep}
    docs = {
        "dollar_field": {"$bad": 1.0},
        "python_object": {"a": {"b": {1, 2}}},
        "deep_nesting": deep,
        "non_finite": {"inf": float("inf"), "nan": float("nan")},
    }
    return await ctx.db.insert("raw", docs[kind])


@query(args={"id": v.string()})
async def get(ctx, id):
    return await ctx.db.get(id)


@query(args={"table": v.string()})
async def all(ctx, table):
    return await ctx.db.query(table).collect()


@query(args={"table": v.string(), "id": v.any()})
async def normalize(ctx, table, id):
    return ctx.db.normalize_id(table, id)


@query
async def system_tables(ctx):
    return {
        "storage": await ctx.db.system.query("_storage").collect(),
        "scheduled": await ctx.db.system.query("_scheduled_functions").collect(),
    }


@query
async def system_query_user_table(ctx):
    return await ctx.db.system.query("messages").collect()


@query
async def user_query_system_table(ctx):
    return await ctx.db.query("_storage").collect()


@query
async def write_in_query(ctx):
    return await ctx.db.insert("channels", {"name": "x"})


@mutation
async def insert_system(ctx):
    return await ctx.db.insert("_storage", {"x": 1.0})


@mutation(args={"id": v.string()})
async def edit_returned_doc(ctx, id):
    doc = await ctx.db.get(id)
    doc["name"] = "changed in place"
    return (await ctx.db.get(id))["name"]
"""


@pytest.fixture
async def dep(deployment: Any) -> Any:
    return await deployment({"schema.py": SCHEMA, "db.py": DB})


async def insert(dep: Any, table: str, doc: Any) -> Any:
    return await dep.run_mutation("db:insert", {"table": table, "doc": doc})


async def channel(dep: Any, name: str = "general") -> str:
    return ok(await insert(dep, "channels", {"name": name}))  # type: ignore[no-any-return]


def message(channel_id: str, **extra: Any) -> dict[str, Any]:
    return {"channel": channel_id, "body": "hi", "reactions": [], **extra}


# -- insert / get ---------------------------------------------------------------------------------
async def test_insert_sets_system_fields(dep: Any) -> None:
    a = await channel(dep, "a")
    b = await channel(dep, "b")
    doc_a = ok(dep.run_query("db:get", {"id": a}))
    doc_b = ok(dep.run_query("db:get", {"id": b}))
    assert doc_a["_id"] == a and doc_a["name"] == "a"
    assert set(doc_a) == {"_id", "_creationTime", "name"}
    assert isinstance(doc_a["_creationTime"], float)
    assert doc_b["_creationTime"] > doc_a["_creationTime"]
    assert decode_id(a)[0] == decode_id(b)[0]  # same table number
    assert len(a) in (31, 32)


async def test_values_round_trip(dep: Any) -> None:
    doc = {
        "name": "x",
        "n": Int64(-(2**63)),
        "f": -0.0,
        "b": b"\x00\xff",
        "none": None,
        "nested": {"list": [1.0, "two", [True]], "deep": {"k": Int64(7)}},
    }
    doc_id = ok(await insert(dep, "anything", doc))
    got = ok(dep.run_query("db:get", {"id": doc_id}))
    for k, v in doc.items():
        assert got[k] == v and type(got[k]) is type(v)


async def test_get_of_missing_and_malformed_ids(dep: Any) -> None:
    a = await channel(dep)
    ok(await dep.run_mutation("db:delete", {"id": a}))
    assert ok(dep.run_query("db:get", {"id": a})) is None
    msg = failure_message(dep.run_query("db:get", {"id": "not-an-id"}))
    assert "query db:get" in msg and "not-an-id" in msg


async def test_insert_rejects_system_fields_and_system_tables(dep: Any) -> None:
    a = await channel(dep)
    msg = failure_message(await insert(dep, "channels", {"name": "x", "_id": a}))
    assert "'_id'" in msg and "system field" in msg
    msg = failure_message(await dep.run_mutation("db:insert_system", {}))
    assert "'_storage'" in msg and "system tables are written by pyconvex" in msg


# -- patch / replace / delete -----------------------------------------------------------------
async def test_patch_is_a_shallow_merge(dep: Any) -> None:
    c = await channel(dep)
    m = ok(await insert(dep, "messages", message(c, reactions=[{"user": "u", "emoji": "x"}])))
    created = ok(dep.run_query("db:get", {"id": m}))["_creationTime"]
    doc = ok(
        await dep.run_mutation(
            "db:patch", {"id": m, "fields": {"body": "edited", "edited_at": 5.0}}
        )
    )
    assert doc["body"] == "edited" and doc["edited_at"] == 5.0
    assert doc["reactions"] == [{"user": "u", "emoji": "x"}] and doc["channel"] == c
    assert doc["_id"] == m and doc["_creationTime"] == created
    doc = ok(await dep.run_mutation("db:unset", {"id": m, "field": "edited_at"}))
    assert "edited_at" not in doc
    # Repeating the system fields unchanged is allowed; changing them is not.
    ok(await dep.run_mutation("db:patch", {"id": m, "fields": {"_id": m, "body": "again"}}))
    msg = failure_message(
        await dep.run_mutation("db:patch", {"id": m, "fields": {"_creationTime": 1.0}})
    )
    assert "cannot change system field '_creationTime'" in msg


async def test_patch_result_is_validated_against_the_schema(dep: Any) -> None:
    c = await channel(dep)
    m = ok(await insert(dep, "messages", message(c)))
    msg = failure_message(await dep.run_mutation("db:unset", {"id": m, "field": "body"}))
    assert "patch into 'messages'" in msg and '"body"' in msg
    msg = failure_message(await dep.run_mutation("db:patch", {"id": m, "fields": {"extra": 1.0}}))
    assert 'unexpected field "extra"' in msg
    assert ok(dep.run_query("db:get", {"id": m}))["body"] == "hi"


async def test_replace_swaps_all_fields_but_keeps_system_fields(dep: Any) -> None:
    c = await channel(dep)
    m = ok(await insert(dep, "messages", message(c, edited_at=1.0)))
    before = ok(dep.run_query("db:get", {"id": m}))
    doc = ok(await dep.run_mutation("db:replace", {"id": m, "doc": message(c, body="new")}))
    assert doc == {
        "_id": m,
        "_creationTime": before["_creationTime"],
        "channel": c,
        "body": "new",
        "reactions": [],
    }
    msg = failure_message(await dep.run_mutation("db:replace", {"id": m, "doc": {"body": "x"}}))
    assert "replace into 'messages'" in msg and "missing the required field" in msg
    msg = failure_message(
        await dep.run_mutation("db:replace", {"id": m, "doc": {**message(c), "_id": c}})
    )
    assert "cannot change system field '_id'" in msg


async def test_delete_and_writes_to_deleted_documents(dep: Any) -> None:
    c = await channel(dep)
    ok(await dep.run_mutation("db:delete", {"id": c}))
    assert ok(dep.run_query("db:all", {"table": "channels"})) == []
    for path, args in [
        ("db:patch", {"fields": {"name": "x"}}),
        ("db:replace", {"doc": {"name": "x"}}),
        ("db:delete", {}),
    ]:
        msg = failure_message(await dep.run_mutation(path, {"id": c, **args}))
        assert "no such document" in msg and c in msg


async def test_writes_with_malformed_ids(dep: Any) -> None:
    msg = failure_message(await dep.run_mutation("db:patch", {"id": "nope", "fields": {}}))
    assert "nope" in msg


async def test_returned_documents_are_copies(dep: Any) -> None:
    c = await channel(dep, "orig")
    assert ok(await dep.run_mutation("db:edit_returned_doc", {"id": c})) == "orig"


# -- normalize_id -------------------------------------------------------------------------------
async def test_normalize_id(dep: Any) -> None:
    c = await channel(dep)
    m = ok(await insert(dep, "messages", message(c)))
    assert ok(dep.run_query("db:normalize", {"table": "channels", "id": c})) == c
    assert ok(dep.run_query("db:normalize", {"table": "messages", "id": c})) is None
    assert ok(dep.run_query("db:normalize", {"table": "messages", "id": m})) == m
    assert ok(dep.run_query("db:normalize", {"table": "channels", "id": "garbage"})) is None
    assert ok(dep.run_query("db:normalize", {"table": "nosuchtable", "id": c})) is None
    assert ok(dep.run_query("db:normalize", {"table": "channels", "id": 5.0})) is None


# -- system tables ------------------------------------------------------------------------------
async def test_system_tables_are_read_through_db_system(dep: Any) -> None:
    assert ok(dep.run_query("db:system_tables", {})) == {"storage": [], "scheduled": []}
    msg = failure_message(dep.run_query("db:system_query_user_table", {}))
    assert "db.query('messages')" in msg
    msg = failure_message(dep.run_query("db:user_query_system_table", {}))
    assert "'_storage'" in msg and "db.system.query" in msg


async def test_queries_cannot_write(dep: Any) -> None:
    msg = failure_message(dep.run_query("db:write_in_query", {}))
    assert "insert" in msg
    assert ok(dep.run_query("db:all", {"table": "channels"})) == []


# -- schema validation --------------------------------------------------------------------------
async def test_nested_validation_error_names_the_path(dep: Any) -> None:
    c = await channel(dep)
    reactions = [
        {"user": "a", "emoji": "x"},
        {"user": "b", "emoji": "y"},
        {"user": "c", "emoji": 3.0},
    ]
    msg = failure_message(await insert(dep, "messages", message(c, reactions=reactions)))
    # Convex's text (as the backend's schema check writes it), then pyconvex's.
    assert (
        "\nUncaught ValidationError: Failed to insert or update a document in table "
        '"messages" because it does not match the schema: Value does not match validator.\n'
        "Path: .reactions[2].emoji\nValue: 3.0\nValidator: v.string()\n"
        "mutation db:insert: insert into 'messages': Value at .reactions[2].emoji must be "
        "v.string(), got float64 3.0\n"
    ) in msg
    assert ok(dep.run_query("db:all", {"table": "messages"})) == []


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ({"body": "x", "reactions": []}, 'missing the required field "channel"'),
        ({"body": 1.0, "reactions": []}, ".body"),
        ({"body": "x", "reactions": [], "bogus": True}, 'unexpected field "bogus"'),
        ({"body": "x", "reactions": [], "edited_at": "now"}, ".edited_at"),
    ],
)
async def test_writes_are_validated(dep: Any, doc: dict[str, Any], expected: str) -> None:
    c = await channel(dep)
    doc = {"channel": c, **doc} if "channel" not in expected else doc
    assert expected in failure_message(await insert(dep, "messages", doc))


async def test_id_fields_must_point_at_their_table(dep: Any) -> None:
    c = await channel(dep)
    m = ok(await insert(dep, "messages", message(c)))
    msg = failure_message(await insert(dep, "messages", message(m)))
    assert ".channel" in msg and "channels" in msg
    msg = failure_message(await insert(dep, "messages", message("garbage")))
    assert ".channel" in msg


async def test_any_table_next_to_schema_tables(dep: Any) -> None:
    a = ok(await insert(dep, "scratch", {"anything": [1.0, {"goes": True}]}))
    b = ok(await insert(dep, "scratch", {"totally": "different"}))
    docs = ok(dep.run_query("db:all", {"table": "scratch"}))
    assert [d["_id"] for d in docs] == [a, b]
    assert ok(await dep.run_mutation("db:replace", {"id": a, "doc": {"x": 1.0}}))["x"] == 1.0


async def test_a_table_the_schema_does_not_declare_is_refused(dep: Any) -> None:
    # As Convex's schema validation: a misspelt table is not silently created.
    msg = failure_message(await insert(dep, "message", {"body": "x"}))
    assert "cannot write to table 'message': the schema does not declare it" in msg
    assert "Did you mean 'messages'?" in msg
    assert "anything, channels, messages, scratch" in msg
    assert "message" not in [t for t in dep.store.tables]
    # Reading it gives the same error: an empty result would hide the typo.
    msg = failure_message(dep.run_query("db:all", {"table": "chanels"}))
    assert "cannot read table 'chanels'" in msg and "Did you mean 'channels'?" in msg
    msg = failure_message(dep.run_query("db:all", {"table": "zzz"}))
    assert "cannot read table 'zzz'" in msg and "Did you mean" not in msg
    # A declared table nobody wrote yet reads as empty.
    assert ok(dep.run_query("db:all", {"table": "scratch"})) == []


async def test_project_without_schema(deployment: Any) -> None:
    dep = await deployment({"db.py": DB})
    doc_id = ok(await insert(dep, "free", {"a": 1.0}))
    assert ok(dep.run_query("db:get", {"id": doc_id}))["a"] == 1.0


async def test_schema_validation_false_accepts_mismatching_documents(deployment: Any) -> None:
    schema = SCHEMA.replace('})\n"""', "})").replace(
        "    }),\n})", "    }),\n}, schema_validation=False)"
    )
    assert "schema_validation=False" in schema
    dep = await deployment({"schema.py": schema, "db.py": DB})
    doc_id = ok(await insert(dep, "messages", {"body": 42.0}))
    assert ok(dep.run_query("db:get", {"id": doc_id}))["body"] == 42.0


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("dollar_field", "$bad"),
        ("python_object", "set {1, 2} is not a Convex value (use a list) at .a.b"),
        ("deep_nesting", "nested more than 16 levels"),
    ],
)
async def test_invalid_values_are_refused_by_the_store(
    deployment: Any, kind: str, expected: str
) -> None:
    dep = await deployment({"db.py": DB})  # no schema: the store itself checks values
    msg = failure_message(await dep.run_mutation("db:insert_bad", {"kind": kind}))
    assert "    at insert_bad (convex/db.py:" in msg and expected in msg
    assert ok(dep.run_query("db:all", {"table": "raw"})) == []


async def test_infinity_and_nan_are_valid_float64(deployment: Any) -> None:
    dep = await deployment({"db.py": DB})
    doc_id = ok(await dep.run_mutation("db:insert_bad", {"kind": "non_finite"}))
    doc = ok(dep.run_query("db:get", {"id": doc_id}))
    assert doc["inf"] == float("inf") and doc["nan"] != doc["nan"]


async def test_writing_from_a_query_says_queries_are_read_only(deployment: Any) -> None:
    dep = await deployment(
        {
            "w.py": (
                "from pyconvex import query\n"
                "@query\n"
                "async def bad(ctx):\n"
                "    await ctx.db.insert('t', {})\n"
            )
        }
    )
    r = dep.run_query("w:bad", {})
    assert r.failure is not None
    assert "read-only" in r.failure.message and "@mutation" in r.failure.message

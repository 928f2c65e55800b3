"""Schema push: the diff, the document check, instant migrations and the atomic swap."""

from __future__ import annotations

import asyncio
import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
from support.deployment import failure_message, ok

from pyconvex import define_schema, define_table, v
from pyconvex.runtime.functions import schema_push as push_module
from pyconvex.runtime.functions.deployment import Deployment
from pyconvex.runtime.functions.loader import LoadedFunctions, load_functions
from pyconvex.runtime.functions.schema_push import (
    check_document,
    diff_schema,
    push,
    read_accepted_schema,
    schema_json,
    write_accepted_schema,
)
from pyconvex.runtime.net.subscriptions import Subscription, SubscriptionManager

SCHEMA = """
from pyconvex import define_schema, define_table, v

schema = define_schema({
    "messages": define_table({"author": v.string(), "body": v.string()})
        .index("by_author", ["author"]),
})
"""

MESSAGES = """
from pyconvex import mutation, query, v

@query(args={})
async def bodies(ctx):
    return [d["body"] for d in await ctx.db.query("messages").collect()]

@query(args={"author": v.string()})
async def by_author(ctx, author):
    docs = await ctx.db.query("messages").with_index(
        "by_author", lambda q: q.eq("author", author)).collect()
    return [d["body"] for d in docs]

@query(args={"body": v.string()})
async def by_body(ctx, body):
    docs = await ctx.db.query("messages").with_index(
        "by_body", lambda q: q.eq("body", body)).collect()
    return [d["author"] for d in docs]

@mutation(args={"author": v.string(), "body": v.string()})
async def send(ctx, author, body):
    return await ctx.db.insert("messages", {"author": author, "body": body})

@mutation(args={"id": v.id("messages"), "body": v.string()})
async def patch_body(ctx, id, body):
    await ctx.db.patch(id, {"body": body})

@mutation(args={"id": v.id("messages")})
async def remove(ctx, id):
    await ctx.db.delete(id)

@mutation(args={})
async def fill_priority(ctx):
    for d in await ctx.db.query("messages").collect():
        await ctx.db.patch(d["_id"], {"priority": 1.0})
"""


def write(root: Path, files: dict[str, str]) -> None:
    for rel, source in files.items():
        (root / rel).write_text(textwrap.dedent(source).lstrip("\n"))


def schema_with(
    fields: str, indexes: str = '.index("by_author", ["author"])', extra: str = ""
) -> str:
    return f"""
from pyconvex import define_schema, define_table, v

schema = define_schema({{
    "messages": define_table({{"author": v.string(), "body": v.string(){fields}}}){indexes},{extra}
}})
"""


class Project:
    """A functions directory, its deployment, and pushes of edited versions of it."""

    def __init__(self, root: Path, deployment: Deployment, loaded: LoadedFunctions) -> None:
        self.root = root
        self.dep = deployment
        self.loaded = loaded
        self.accepted: dict[str, Any] | None = schema_json(loaded.schema)

    async def push(self, files: dict[str, str], **kwargs: Any) -> push_module.PushResult:
        write(self.root, files)
        loaded = load_functions(self.root, previous=self.loaded, changed=list(self.root.iterdir()))
        result = await push(self.dep, loaded, accepted=self.accepted, **kwargs)
        if result.ok:
            self.loaded = loaded
            self.accepted = schema_json(loaded.schema)
        return result


@pytest.fixture
async def project(tmp_path: Path) -> Any:
    root = tmp_path / "convex"
    root.mkdir()
    write(root, {"schema.py": SCHEMA, "messages.py": MESSAGES})
    loaded = load_functions(root)
    dep = await Deployment.open(None, tmp_path / "data", loaded=loaded)
    yield Project(root, dep, loaded)
    await dep.close()


async def send_many(dep: Deployment, n: int, author: str = "ada") -> None:
    for i in range(n):
        ok(await dep.run_mutation("messages:send", {"author": author, "body": f"m{i}"}))


# -- the diff -------------------------------------------------------------------------------------


async def test_diff_names_every_change(project: Project) -> None:
    await send_many(project.dep, 1)
    store = project.dep.store
    same = load_functions(project.root).schema
    assert diff_schema(store, project.accepted, same).summary() == []
    new = define_schema(
        {
            "messages": define_table(
                {"author": v.string(), "body": v.string(), "n": v.optional(v.float64())}
            ).index("by_body", ["body"]),
            "channels": define_table({"name": v.string()}),
        }
    )
    diff = diff_schema(store, project.accepted, new)
    assert diff.added_tables == ["channels"]
    assert [(t, s.name, s.fields) for t, s in diff.added_indexes] == [
        ("messages", "by_body", ("body",))
    ]
    assert diff.removed_indexes == [("messages", "by_author")]
    assert diff.revalidate == ["messages"]  # its validator changed and it has documents
    assert diff.migrations


async def test_diff_without_accepted_schema_checks_every_table_with_documents(
    project: Project,
) -> None:
    await send_many(project.dep, 1)
    diff = diff_schema(project.dep.store, None, project.loaded.schema)
    assert diff.revalidate == ["messages"] and not diff.migrations


async def test_a_changed_index_is_rebuilt(project: Project) -> None:
    await send_many(project.dep, 1)
    new = define_schema(
        {
            "messages": define_table({"author": v.string(), "body": v.string()}).index(
                "by_author", ["author", "body"]
            )
        }
    )
    diff = diff_schema(project.dep.store, project.accepted, new)
    assert [(t, s.fields) for t, s in diff.added_indexes] == [("messages", ("author", "body"))]
    assert diff.removed_indexes == [("messages", "by_author")]


def test_check_document_names_field_expected_and_found() -> None:
    validator = v.object({"author": v.string(), "tags": v.array(v.string())})
    doc: dict[str, Any] = {"_id": "abc", "_creationTime": 1.0, "tags": ["x"]}
    found = check_document(validator, "messages", doc)
    assert found is not None
    assert (found.doc_id, found.field, found.expected) == ("abc", ".author", "v.string()")
    assert "missing" in found.found
    doc.update(author="ada", tags=["x", 3.0])
    found = check_document(validator, "messages", doc)
    assert found is not None
    assert (found.field, found.expected, found.found) == (".tags[1]", "v.string()", "float64 3.0")
    assert check_document(validator, "messages", {**doc, "tags": []}) is None
    found = check_document(validator, "messages", {**doc, "tags": [], "extra": True})
    assert found is not None and found.field == ".extra" and "boolean True" in found.found


# -- refused and accepted pushes ------------------------------------------------------------------


async def test_required_field_missing_from_documents_is_refused(project: Project) -> None:
    await send_many(project.dep, 3)
    first_id = next(iter(project.dep.store.tables["messages"].docs))
    before = project.dep.functions
    edited = MESSAGES.replace('return [d["body"]', 'return ["new:" + d["body"]')
    result = await project.push(
        {"schema.py": schema_with(', "priority": v.float64()'), "messages.py": edited}
    )
    assert not result.ok
    (violation,) = result.violations
    assert violation.table == "messages" and violation.field == ".priority"
    assert violation.doc_id == first_id
    assert violation.expected == "v.float64()" and "missing" in violation.found
    assert violation.doc_id in violation.message and "priority" in violation.message
    # Nothing changed: the old code and schema keep serving.
    assert project.dep.functions is before
    assert ok(project.dep.run_query("messages:bodies", {}))[0] == "m0"
    ok(await project.dep.run_mutation("messages:send", {"author": "bob", "body": "still"}))

    # Optional: accepted, and the new code serves.
    result = await project.push({"schema.py": schema_with(', "priority": v.optional(v.float64())')})
    assert result.ok, result.violations
    assert ok(project.dep.run_query("messages:bodies", {}))[0] == "new:m0"


async def test_refused_push_is_accepted_once_the_data_is_fixed(project: Project) -> None:
    await send_many(project.dep, 2)
    required = schema_with(', "priority": v.float64()')
    assert not (await project.push({"schema.py": required})).ok
    for doc_id in list(project.dep.store.tables["messages"].docs):  # the old code serves
        ok(await project.dep.run_mutation("messages:remove", {"id": doc_id}))
    assert (await project.push({})).ok
    failure = await project.dep.run_mutation("messages:send", {"author": "x", "body": "y"})
    assert "priority" in failure_message(failure)  # the new schema applies to writes now


async def test_wrong_type_names_expected_and_found(project: Project) -> None:
    await send_many(project.dep, 1)
    result = await project.push(
        {"schema.py": SCHEMA.replace('"body": v.string()', '"body": v.float64()')}
    )
    (violation,) = result.violations
    assert (violation.field, violation.expected) == (".body", "v.float64()")
    assert violation.found == "string 'm0'"


async def test_documents_written_during_the_check_are_checked_too(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    await send_many(project.dep, 50)
    assert (
        await project.push({"schema.py": schema_with(', "priority": v.optional(v.float64())')})
    ).ok
    ok(await project.dep.run_mutation("messages:fill_priority", {}))
    monkeypatch.setattr(push_module, "CHUNK", 5)
    writes: list[asyncio.Task[Any]] = []

    def progress(what: str, done: int, total: int) -> None:
        if not writes:
            # The old code writes a document without "priority" while the check runs (the
            # mutation runs in the push's next yield to the event loop).
            args = {"author": "late", "body": "x"}
            writes.append(asyncio.ensure_future(project.dep.run_mutation("messages:send", args)))

    result = await project.push(
        {"schema.py": schema_with(', "priority": v.float64()')}, progress=progress
    )
    bad = ok(await writes[0])
    assert [v.doc_id for v in result.violations] == [bad]


# -- instant migrations ---------------------------------------------------------------------------


async def test_added_index_on_a_populated_table_is_usable_at_once(project: Project) -> None:
    await send_many(project.dep, 30)
    assert "by_body" in failure_message(project.dep.run_query("messages:by_body", {"body": "m3"}))
    seen: list[tuple[str, int, int]] = []
    result = await project.push(
        {
            "schema.py": schema_with(
                "", '.index("by_author", ["author"]).index("by_body", ["body"])'
            )
        },
        progress=lambda what, done, total: seen.append((what, done, total)),
    )
    assert result.ok and result.indexed == 30
    assert ok(project.dep.run_query("messages:by_body", {"body": "m3"})) == ["ada"]
    assert seen[-1] == ("index messages.by_body", 30, 30)


async def test_backfill_stays_exact_under_concurrent_writes(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    await send_many(project.dep, 40)
    dep = project.dep
    ids = list(dep.store.tables["messages"].docs)
    monkeypatch.setattr(push_module, "CHUNK", 3)
    writes: list[asyncio.Task[Any]] = []
    calls = 0

    def mutate(path: str, args: dict[str, Any]) -> None:
        writes.append(asyncio.ensure_future(dep.run_mutation(path, args)))

    def progress(what: str, done: int, total: int) -> None:
        # Writes land between chunks: on documents indexed already and on ones not reached.
        nonlocal calls
        calls += 1
        if calls == 1:
            mutate("messages:patch_body", {"id": ids[1], "body": "edited-a"})
            mutate("messages:patch_body", {"id": ids[-1], "body": "edited-b"})
            mutate("messages:send", {"author": "late", "body": "m0"})
        elif calls == 5:
            mutate("messages:remove", {"id": ids[2]})
            mutate("messages:remove", {"id": ids[-2]})
            mutate("messages:patch_body", {"id": ids[-3], "body": "edited-a"})

    indexes = '.index("by_author", ["author"]).index("by_body", ["body"])'
    result = await project.push({"schema.py": schema_with("", indexes)}, progress=progress)
    assert result.ok and calls > 5
    for task in writes:
        ok(await task)
    table = dep.store.tables["messages"]
    docs = [d for d in (table.doc(i) for i in list(table.docs)) if d is not None]
    for body in {d["body"] for d in docs} | {"m1", "m2", "m38", "m39"}:
        via_index = sorted(ok(dep.run_query("messages:by_body", {"body": body})))
        scan = sorted(d["author"] for d in docs if d["body"] == body)
        assert via_index == scan, body
    assert sorted(ok(dep.run_query("messages:by_body", {"body": "edited-a"}))) == ["ada", "ada"]


async def test_removed_index_is_dropped(project: Project) -> None:
    await send_many(project.dep, 2)
    assert ok(project.dep.run_query("messages:by_author", {"author": "ada"})) == ["m0", "m1"]
    result = await project.push({"schema.py": schema_with("", "")})
    assert result.ok and result.diff.removed_indexes == [("messages", "by_author")]
    assert "by_author" not in project.dep.store.tables["messages"].indexes
    msg = failure_message(project.dep.run_query("messages:by_author", {"author": "ada"}))
    assert "by_author" in msg


async def test_new_table_is_created_durably(project: Project, tmp_path: Path) -> None:
    extra = '\n    "channels": define_table({"name": v.string()}).index("by_name", ["name"]),'
    result = await project.push({"schema.py": schema_with("", extra=extra)})
    assert result.ok and result.diff.added_tables == ["channels", "messages"]
    channels = project.dep.store.tables["channels"]
    assert "by_name" in channels.indexes
    rows = await project.dep.sql("SELECT count(*) FROM channels")
    assert rows == [(0,)]  # its SQL view exists
    await write_accepted_schema(project.dep, project.accepted)
    await project.dep.close()
    again = await Deployment.open(None, tmp_path / "data", loaded=project.loaded)
    try:
        assert "channels" in again.store.tables
        assert await read_accepted_schema(again) == project.accepted
    finally:
        await again.close()
    project.dep = await Deployment.open(None, tmp_path / "data", loaded=project.loaded)


async def test_accepted_schema_round_trips(project: Project) -> None:
    assert await read_accepted_schema(project.dep) is None
    await write_accepted_schema(project.dep, project.accepted)
    assert await read_accepted_schema(project.dep) == json.loads(json.dumps(project.accepted))
    await write_accepted_schema(project.dep, None)
    assert await read_accepted_schema(project.dep) is None


# -- swapping code under subscriptions ------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.updates: list[list[tuple[int, str]]] = []

    def subscriptions_updated(self, ts: int, changed: list[tuple[int, Subscription]]) -> None:
        self.updates.append([(qid, sub.body) for qid, sub in changed])


async def test_every_subscription_reruns_on_the_new_code(project: Project) -> None:
    await send_many(project.dep, 1)
    manager = SubscriptionManager(project.dep)
    client = Recorder()
    s1 = manager.subscribe(client, 1, "messages:bodies", [{}])
    s2 = manager.subscribe(client, 2, "messages:shout", [{}])  # not defined yet
    s3 = manager.subscribe(client, 3, "messages:by_author", [{"author": "ada"}])
    assert "Could not find" in s2.body
    before3 = s3.body
    edited = MESSAGES.replace('return [d["body"]', 'return ["v2:" + d["body"]', 1) + (
        "\n@query(args={})\nasync def shout(ctx):\n    return 'HEY'\n"
    )
    result = await project.push({"messages.py": edited}, after_swap=manager.rerun_all)
    assert result.ok
    # One update for the client, with both changed queries; the unchanged one is left out.
    assert len(client.updates) == 1
    assert before3 == s3.body
    assert sorted(qid for qid, _ in client.updates[0]) == [1, 2]
    assert '"v2:m0"' in s1.body and '"HEY"' in s2.body
    assert '"m0"' in s3.body
    manager.close()


async def test_an_empty_table_written_during_the_push_is_checked(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    extra = '\n    "notes": define_table({"text": v.string()}),'
    notes = MESSAGES + (
        "\n@mutation(args={})\nasync def note(ctx):\n"
        "    return await ctx.db.insert('notes', {'text': 1.0})\n"
    )
    await send_many(project.dep, 20)
    assert (
        await project.push(
            {
                "schema.py": schema_with("", extra=extra.replace("v.string()", "v.any()")),
                "messages.py": notes,
            }
        )
    ).ok
    monkeypatch.setattr(push_module, "CHUNK", 5)
    writes: list[asyncio.Task[Any]] = []

    def progress(what: str, done: int, total: int) -> None:
        if not writes:  # "notes" is empty when the push starts; the old code writes to it
            writes.append(asyncio.ensure_future(project.dep.run_mutation("messages:note", {})))

    # messages' validator changes too (an optional field), so the push checks it in chunks.
    result = await project.push(
        {"schema.py": schema_with(', "n": v.optional(v.float64())', extra=extra)},
        progress=progress,
    )
    bad = ok(await writes[0])
    assert [(v.table, v.doc_id, v.field) for v in result.violations] == [("notes", bad, ".text")]

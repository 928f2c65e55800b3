"""Full-text search: tokenising, prefix and relevance, filters, errors, snapshots, own writes,
pagination, the 1024 limit, reactivity, and the index's upkeep (clean-up, undo, restart)."""

from __future__ import annotations

import random
from typing import Any

import pytest
from support.deployment import CommitLog, failure_message, ok

from pyconvex.runtime.functions.deployment import Deployment
from pyconvex.runtime.net.subscriptions import Subscription, SubscriptionManager
from pyconvex.runtime.store.memory import Store, UndoRecord
from pyconvex.runtime.store.search_index import search_index, tokenize
from pyconvex.server.schema import SearchIndexDefinition
from pyconvex.values import encode_key_part

SCHEMA = """
from pyconvex import define_schema, define_table, v

schema = define_schema({
    "messages": define_table({
        "channel": v.string(),
        "author": v.optional(v.string()),
        "body": v.optional(v.union(v.string(), v.float64(), v.null())),
        "n": v.optional(v.float64()),
    })
    .index("by_channel", ["channel"])
    .search_index("search_body", search_field="body", filter_fields=["channel", "author"]),
    "plain": define_table({"body": v.string()}),
    "later": define_table({"body": v.string()}).search_index("search_later", search_field="body"),
})
"""

MESSAGES = """
from pyconvex import ConvexError, UNSET, mutation, query, v


def _search(ctx, text, channel=None, author=None, index="search_body", field="body"):
    def build(q):
        q = q.search(field, text)
        if channel is not None:
            q = q.eq("channel", channel)
        if author is not None:
            q = q.eq("author", UNSET if author == "<unset>" else author)
        return q
    return ctx.db.query("messages").with_search_index(index, build)


@query(args={"text": v.string(), "channel": v.optional(v.string()),
             "author": v.optional(v.string()), "n": v.optional(v.float64())})
async def search(ctx, text, channel=None, author=None, n=None):
    q = _search(ctx, text, channel, author)
    docs = await (q.collect() if n is None else q.take(int(n)))
    return [d["body"] for d in docs]


@query(args={"text": v.string(), "opts": v.any(), "odd": v.optional(v.boolean())})
async def page(ctx, text, opts, odd=False):
    q = _search(ctx, text)
    if odd:
        q = q.filter(lambda f: f.eq(f.mod(f.field("n"), 2.0), 1.0))
    result = await q.paginate(opts)
    return {**result, "page": [d["body"] for d in result["page"]]}


@query(args={"text": v.string()})
async def first_odd(ctx, text):
    doc = await _search(ctx, text).filter(lambda f: f.eq(f.mod(f.field("n"), 2.0), 1.0)).first()
    return None if doc is None else doc["body"]


@query(args={"case": v.string()})
async def misuse(ctx, case):
    q = ctx.db.query("messages")
    if case == "unknown_index":
        q = q.with_search_index("nope", lambda q: q.search("body", "x"))
    elif case == "database_index":
        q = q.with_search_index("by_channel", lambda q: q.search("body", "x"))
    elif case == "wrong_field":
        q = q.with_search_index("search_body", lambda q: q.search("author", "x"))
    elif case == "not_a_filter_field":
        q = q.with_search_index("search_body", lambda q: q.search("body", "x").eq("n", 1))
    elif case == "eq_first":
        q = q.with_search_index("search_body", lambda q: q.eq("channel", "a"))
    elif case == "no_search":
        q = q.with_search_index("search_body", lambda q: q)
    elif case == "returns_none":
        q = q.with_search_index("search_body", lambda q: None)
    elif case == "order_after":
        q = q.with_search_index("search_body", lambda q: q.search("body", "x")).order("desc")
    elif case == "order_before":
        q = q.order("desc").with_search_index("search_body", lambda q: q.search("body", "x"))
    elif case == "with_index_after":
        q = q.with_search_index("search_body", lambda q: q.search("body", "x")).with_index(
            "by_channel", lambda q: q.eq("channel", "a"))
    elif case == "with_index_before":
        q = q.with_index("by_channel", lambda q: q.eq("channel", "a")).with_search_index(
            "search_body", lambda q: q.search("body", "x"))
    elif case == "too_many_terms":
        text = " ".join(f"w{i}" for i in range(17))
        q = q.with_search_index("search_body", lambda q: q.search("body", text))
    elif case == "text_not_str":
        q = q.with_search_index("search_body", lambda q: q.search("body", 3))
    return await q.take(1)


@mutation(args={"channel": v.string(), "body": v.any(), "author": v.optional(v.string()),
                "n": v.optional(v.float64())})
async def send(ctx, channel, body, author=None, n=None):
    doc = {"channel": channel}
    if body != "<missing>":
        doc["body"] = body
    if author is not None:
        doc["author"] = author
    if n is not None:
        doc["n"] = n
    return await ctx.db.insert("messages", doc)


@mutation(args={"bodies": v.array(v.string()), "channel": v.string()})
async def send_many(ctx, bodies, channel):
    for i, body in enumerate(bodies):
        await ctx.db.insert("messages", {"channel": channel, "body": body, "n": float(i)})


@mutation(args={"id": v.id("messages"), "fields": v.any()})
async def patch(ctx, id, fields):
    await ctx.db.patch(id, fields)


@mutation(args={"id": v.id("messages")})
async def remove(ctx, id):
    await ctx.db.delete(id)


@mutation(args={"body": v.string(), "fail": v.optional(v.boolean())})
async def own_writes(ctx, body, fail=False):
    seen = []
    id = await ctx.db.insert("messages", {"channel": "own", "body": body})
    q = lambda: _search(ctx, "zebra", "own").collect()
    seen.append([d["body"] for d in await q()])
    await ctx.db.patch(id, {"body": "quagga " + body})
    seen.append([d["body"] for d in await q()])
    await ctx.db.patch(id, {"body": "nothing to see"})
    seen.append([d["body"] for d in await q()])
    await ctx.db.delete(id)
    await ctx.db.insert("messages", {"channel": "own", "body": body})
    seen.append([d["body"] for d in await q()])
    if fail:
        raise ConvexError("undo me")
    return seen


@mutation(args={"body": v.string()})
async def send_later(ctx, body):
    return await ctx.db.insert("later", {"body": body})


@query(args={"text": v.string()})
async def search_later(ctx, text):
    docs = await ctx.db.query("later").with_search_index(
        "search_later", lambda q: q.search("body", text)).collect()
    return [d["body"] for d in docs]


@mutation(args={"body": v.string()})
async def send_plain(ctx, body):
    return await ctx.db.insert("plain", {"body": body})
"""

FILES = {"schema.py": SCHEMA, "messages.py": MESSAGES}


@pytest.fixture
async def dep(deployment: Any) -> Deployment:
    d: Deployment = await deployment(FILES)
    # Keep every snapshot these tests read (they never depend on the clock).
    d.store.retention_ns = 10**15
    return d


async def send(dep: Deployment, body: Any, channel: str = "a", **more: Any) -> str:
    result = await dep.run_mutation("messages:send", {"channel": channel, "body": body, **more})
    value: str = ok(result)
    return value


def search(dep: Deployment, text: str, **args: Any) -> Any:
    return ok(dep.run_query("messages:search", {"text": text, **args}))


def collect_garbage(dep: Deployment) -> None:
    """Forget every old version, as the store does once no snapshot can see them."""
    dep.store.collect(dep.store.durable_ts)


# -- tokenising and matching ----------------------------------------------------------------


def test_tokenize_splits_on_punctuation_and_lowercases() -> None:
    assert tokenize("Hello, World! it's 2024-05") == ["hello", "world", "it", "s", "2024", "05"]
    assert tokenize("snake_case CamelCase") == ["snake", "case", "camelcase"]
    assert tokenize("Ünïcödé ÉTÉ") == ["ünïcödé", "été"]
    assert tokenize("  ...  ") == []


def test_tokenize_drops_terms_of_32_bytes_or_more() -> None:
    assert tokenize("a" * 31 + " b") == ["a" * 31, "b"]
    assert tokenize("a" * 32 + " b") == ["b"]
    assert tokenize("é" * 16 + " ok") == ["ok"]  # 16 characters, 32 bytes
    assert tokenize("é" * 15) == ["é" * 15]


async def test_terms_are_case_insensitive_and_the_last_is_a_prefix(dep: Deployment) -> None:
    await send(dep, "Hello there")
    await send(dep, "help wanted")
    await send(dep, "hell's kitchen, WORLD")
    assert sorted(search(dep, "HELLO")) == ["Hello there"]
    assert sorted(search(dep, "hel")) == ["Hello there", "hell's kitchen, WORLD", "help wanted"]
    # Only the last term is a prefix: "hel" as a first term must match a whole term.
    assert search(dep, "hel world") == ["hell's kitchen, WORLD"]
    assert sorted(search(dep, "world hel")) == [
        "Hello there",
        "hell's kitchen, WORLD",
        "help wanted",
    ]
    assert search(dep, "kitchens") == []
    assert search(dep, "") == [] and search(dep, " ,. ") == []


async def test_documents_without_a_string_search_field_are_not_indexed(dep: Deployment) -> None:
    await send(dep, 42.0)
    await send(dep, None)
    await send(dep, "<missing>")
    ok(await dep.run_mutation("messages:send", {"channel": "a", "body": "42 apples"}))
    assert search(dep, "42") == ["42 apples"]


# -- relevance -----------------------------------------------------------------------------


async def test_results_come_in_relevance_order(dep: Deployment) -> None:
    await send(dep, "cats and dogs and birds and fish and more words here")
    await send(dep, "cats cats cats")
    await send(dep, "dogs only")
    await send(dep, "cats and dogs")
    # Both terms in a short text come first; then occurrences count, and shorter texts win.
    both = search(dep, "cats dogs")
    assert both[0] == "cats and dogs" and len(both) == 4
    assert search(dep, "cats") == [
        "cats cats cats",
        "cats and dogs",
        "cats and dogs and birds and fish and more words here",
    ]


async def test_rare_terms_weigh_more(dep: Deployment) -> None:
    for i in range(5):
        await send(dep, f"common filler {i}")
    await send(dep, "common rare")
    await send(dep, "rare thing")
    assert search(dep, "common rare", n=2) == ["common rare", "rare thing"]


async def test_equal_scores_come_newest_first(dep: Deployment) -> None:
    for word in ["same one", "same two", "same three"]:
        await send(dep, word)
    assert search(dep, "same") == ["same three", "same two", "same one"]


# -- filters -------------------------------------------------------------------------------


async def test_eq_filters_on_filter_fields(dep: Deployment) -> None:
    await send(dep, "deploy today", channel="ops", author="ann")
    await send(dep, "deploy tomorrow", channel="ops", author="bob")
    await send(dep, "deploy never", channel="dev", author="ann")
    await send(dep, "deploy anonymously", channel="ops")
    assert sorted(search(dep, "deploy", channel="ops")) == [
        "deploy anonymously",
        "deploy today",
        "deploy tomorrow",
    ]
    assert search(dep, "deploy", channel="ops", author="ann") == ["deploy today"]
    assert search(dep, "deploy", author="<unset>") == ["deploy anonymously"]
    assert search(dep, "deploy", channel="nowhere") == []


async def test_filter_and_first_after_the_search(dep: Deployment) -> None:
    ok(
        await dep.run_mutation(
            "messages:send_many", {"bodies": ["x y", "x", "x x x"], "channel": "a"}
        )
    )
    # n is 0, 1, 2: only "x" is odd.
    assert ok(dep.run_query("messages:first_odd", {"text": "x"})) == "x"
    assert ok(dep.run_query("messages:first_odd", {"text": "y"})) is None


# -- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("unknown_index", "no search index 'nope' (its search indexes: 'search_body')"),
        ("database_index", "'by_channel' is a database index: read it with with_index"),
        ("wrong_field", "searches the field 'body', not 'author'"),
        ("not_a_filter_field", "'n' is not a filter field of search index messages.search_body"),
        ("eq_first", "must start with q.search('body', text)"),
        ("no_search", "needs a search"),
        ("returns_none", "must return the filter builder"),
        ("order_after", "relevance order; remove .order('desc')"),
        ("order_before", "relevance order; remove .order()"),
        ("with_index_after", "with_index('by_channel') cannot follow with_search_index"),
        ("with_index_before", "cannot follow with_index('by_channel')"),
        ("too_many_terms", "has 17 distinct terms; a search takes at most 16"),
        ("text_not_str", "needs the text as a string, got int"),
    ],
)
async def test_misuse_gives_a_clear_error(dep: Deployment, case: str, expected: str) -> None:
    message = failure_message(dep.run_query("messages:misuse", {"case": case}))
    assert expected in message
    assert "messages:misuse" in message


async def test_filter_field_error_lists_the_valid_ones(dep: Deployment) -> None:
    message = failure_message(dep.run_query("messages:misuse", {"case": "not_a_filter_field"}))
    assert "its filter fields: 'channel', 'author'" in message


async def test_collect_over_1024_matches_fails_but_take_works(dep: Deployment) -> None:
    bodies = [f"bulk {i}" for i in range(1025)]
    ok(await dep.run_mutation("messages:send_many", {"bodies": bodies, "channel": "a"}))
    assert "matched more than 1024 documents" in failure_message(
        dep.run_query("messages:search", {"text": "bulk"})
    )
    assert len(search(dep, "bulk", n=5)) == 5
    assert search(dep, "bulk 7", n=1) == ["bulk 7"]  # both terms: the best match
    assert len(search(dep, "bulk", n=2000)) == 1024


# -- MVCC ----------------------------------------------------------------------------------


async def test_a_query_reads_one_snapshot(dep: Deployment) -> None:
    first = await send(dep, "apple pie")
    ts1 = dep.latest_ts
    ok(await dep.run_mutation("messages:patch", {"id": first, "fields": {"body": "banana"}}))
    await send(dep, "apple tart")
    gone = await send(dep, "apple crumble")
    ok(await dep.run_mutation("messages:remove", {"id": gone}))
    at_ts1 = ok(dep.run_query("messages:search", {"text": "apple"}, ts=ts1))
    assert at_ts1 == ["apple pie"]
    assert ok(dep.run_query("messages:search", {"text": "banana"}, ts=ts1)) == []
    assert search(dep, "apple") == ["apple tart"]
    assert search(dep, "banana") == ["banana"]
    # The same after the old versions are collected: the index drops the stale terms.
    collect_garbage(dep)
    search(dep, "x")  # a search cleans up
    assert search(dep, "apple") == ["apple tart"]
    assert search(dep, "pie") == [] and search(dep, "crumble") == []
    index = dep.store.tables["messages"].search.indexes["search_body"]  # type: ignore[union-attr]
    assert "pie" not in index.postings and "crumble" not in index.postings
    assert not index.dirty


async def test_the_index_is_built_from_existing_versions(dep: Deployment) -> None:
    # Versions written before the first search (some still retained) are all found.
    doc = await send(dep, "old words")
    ts1 = dep.latest_ts
    ok(await dep.run_mutation("messages:patch", {"id": doc, "fields": {"body": "new words"}}))
    assert dep.store.tables["messages"].search is None
    assert ok(dep.run_query("messages:search", {"text": "old"}, ts=ts1)) == ["old words"]
    assert search(dep, "old") == []
    assert search(dep, "words") == ["new words"]


async def test_a_mutation_sees_its_own_writes(dep: Deployment) -> None:
    seen = ok(await dep.run_mutation("messages:own_writes", {"body": "zebra crossing"}))
    assert seen == [["zebra crossing"], ["quagga zebra crossing"], [], ["zebra crossing"]]
    assert search(dep, "zebra", channel="own") == ["zebra crossing"]


async def test_an_undone_mutation_leaves_no_trace(dep: Deployment) -> None:
    await send(dep, "quagga herd")
    result = await dep.run_mutation("messages:own_writes", {"body": "zebra", "fail": True})
    assert result.failure is not None
    assert search(dep, "zebra") == [] and search(dep, "quagga") == ["quagga herd"]
    await send(dep, "later commit")  # the undone timestamp is never durable; a later one is
    collect_garbage(dep)
    search(dep, "x")
    index = dep.store.tables["messages"].search.indexes["search_body"]  # type: ignore[union-attr]
    assert "zebra" not in index.postings and not index.dirty


async def test_search_survives_a_restart(deployment: Any) -> None:
    dep: Deployment = await deployment(FILES, persistent=True)
    await send(dep, "durable words", author="ann")
    await send(dep, "other words")
    await dep.close()
    dep = await deployment(FILES, persistent=True)
    assert search(dep, "durable") == ["durable words"]
    assert search(dep, "words", author="ann") == ["durable words"]


# -- pagination ----------------------------------------------------------------------------


async def test_pages_cover_the_results_in_relevance_order(dep: Deployment) -> None:
    bodies = [("needle " * (1 + i % 4)) + f"hay{i}" for i in range(23)]
    ok(await dep.run_mutation("messages:send_many", {"bodies": bodies, "channel": "a"}))
    everything = search(dep, "needle")
    assert sorted(everything) == sorted(bodies)
    pages, cursor = [], None
    while True:
        r = ok(
            dep.run_query(
                "messages:page", {"text": "needle", "opts": {"numItems": 5, "cursor": cursor}}
            )
        )
        pages.append(r["page"])
        cursor = r["continueCursor"]
        if r["isDone"]:
            break
    assert [len(p) for p in pages] == [5, 5, 5, 5, 3]
    assert [b for p in pages for b in p] == everything


async def test_filtered_pages_cover_every_kept_result(dep: Deployment) -> None:
    bodies = [f"item {i}" for i in range(12)]
    ok(await dep.run_mutation("messages:send_many", {"bodies": bodies, "channel": "a"}))
    seen, cursor, done = [], None, False
    while not done:
        r = ok(
            dep.run_query(
                "messages:page",
                {"text": "item", "odd": True, "opts": {"numItems": 2, "cursor": cursor}},
            )
        )
        seen += r["page"]
        cursor, done = r["continueCursor"], r["isDone"]
    assert sorted(seen) == sorted(f"item {i}" for i in range(1, 12, 2))


async def test_end_cursor_fixes_the_page_end(dep: Deployment) -> None:
    ok(
        await dep.run_mutation(
            "messages:send_many", {"bodies": [f"w {i}" for i in range(6)], "channel": "a"}
        )
    )
    first = ok(
        dep.run_query("messages:page", {"text": "w", "opts": {"numItems": 3, "cursor": None}})
    )
    again = ok(
        dep.run_query(
            "messages:page",
            {
                "text": "w",
                "opts": {"numItems": 3, "cursor": None, "endCursor": first["continueCursor"]},
            },
        )
    )
    assert again["page"] == first["page"] and again["continueCursor"] == first["continueCursor"]


async def test_a_cursor_from_another_query_is_refused(dep: Deployment) -> None:
    await send(dep, "w one")
    await send(dep, "w two")
    r = ok(dep.run_query("messages:page", {"text": "w", "opts": {"numItems": 1, "cursor": None}}))
    assert not r["isDone"]
    message = failure_message(
        dep.run_query("messages:page", {"text": "w", "opts": {"numItems": 1, "cursor": "bm9wZQ"}})
    )
    assert "InvalidCursor" in message


# -- reactivity ----------------------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.updates: list[list[int]] = []

    def subscriptions_updated(self, ts: int, changed: list[tuple[int, Subscription]]) -> None:
        self.updates.append(sorted(qid for qid, _ in changed))


async def test_a_search_subscription_reruns_only_on_matching_writes(dep: Deployment) -> None:
    target = await send(dep, "hello world", channel="a")
    manager = SubscriptionManager(dep)
    recorder = Recorder()
    sub = manager.subscribe(recorder, 1, "messages:search", [{"text": "world hel", "channel": "a"}])
    runs = manager.executions
    await send(dep, "nothing relevant", channel="a")  # same table and channel, other terms
    await send(dep, "hello world", channel="b")  # matching terms, other channel
    ok(await dep.run_mutation("messages:send_plain", {"body": "hello world"}))
    assert manager.executions == runs and recorder.updates == []
    await send(dep, "help!", channel="a")  # the last term is a prefix
    assert manager.executions == runs + 1 and recorder.updates == [[1]]
    assert '"help!"' in sub.body
    await send(dep, "world peace", channel="a")  # an earlier, whole term
    assert manager.executions == runs + 2
    # Changing a result in any way re-runs it: its old version matched.
    ok(await dep.run_mutation("messages:patch", {"id": target, "fields": {"n": 3.0}}))
    assert manager.executions == runs + 3
    ok(await dep.run_mutation("messages:remove", {"id": target}))
    assert manager.executions == runs + 4 and '"hello world"' not in sub.body
    manager.close()


async def test_a_write_probes_only_the_searches_for_its_terms(dep: Deployment) -> None:
    await send(dep, "creates the table")
    manager = SubscriptionManager(dep)
    recorder = Recorder()
    for i in range(200):
        manager.subscribe(recorder, i, "messages:search", [{"text": f"word{i} x", "channel": "a"}])
    runs, checks = manager.executions, manager.range_checks
    await send(dep, "about word42 today", channel="a")
    assert manager.executions == runs + 1 and recorder.updates == [[42]]
    assert manager.range_checks - checks <= 10, "a write should not probe every search"
    manager.close()


async def test_filter_only_on_the_first_eq_field(dep: Deployment) -> None:
    await send(dep, "creates the table")
    manager = SubscriptionManager(dep)
    recorder = Recorder()
    manager.subscribe(recorder, 1, "messages:search", [{"text": "news", "author": "ann"}])
    runs = manager.executions
    await send(dep, "news", author="bob")
    assert manager.executions == runs
    await send(dep, "news", author="ann")
    assert manager.executions == runs + 1 and recorder.updates == [[1]]
    manager.close()


async def test_a_search_on_a_table_not_created_yet_reruns_on_its_first_insert(
    dep: Deployment,
) -> None:
    manager = SubscriptionManager(dep)
    recorder = Recorder()
    sub = manager.subscribe(recorder, 1, "messages:search_later", [{"text": "first"}])
    assert '"value":[]' in sub.body
    ok(await dep.run_mutation("messages:send_later", {"body": "first post"}))
    assert recorder.updates == [[1]] and '"first post"' in sub.body
    runs = manager.executions
    ok(await dep.run_mutation("messages:send_later", {"body": "unrelated"}))
    assert manager.executions == runs
    manager.close()


async def test_tables_without_a_search_index_carry_no_search_keys(dep: Deployment) -> None:
    log = CommitLog(dep)
    await send(dep, "creates the table")
    search(dep, "anything")  # builds the messages index
    r = await dep.run_mutation("messages:send_plain", {"body": "hello world"})
    entry = log.for_ts(ok_ts(r)).writes.entries[0]
    assert dep.store.tables["plain"].search is None
    assert {name for name, _ in entry.keys} == {"by_creation_time"}
    r = await dep.run_mutation("messages:send", {"channel": "a", "body": "hello world"})
    names = {name for name, _ in log.for_ts(ok_ts(r)).writes.entries[0].keys}
    assert "search_body" in names


def ok_ts(result: Any) -> int:
    ok(result)
    ts: int = result.ts
    return ts


# -- the index against a brute-force reference ----------------------------------------------

WORDS = ["apple", "apricot", "banana", "band", "bandana", "cherry", "date", "fig"]


def _brute_force(
    table: Any, index: Any, ids: list[str], ts: int | None, exact: set[str], prefix: str
) -> dict[str, Any]:
    out = {}
    for doc_id in ids:
        version = table.get(doc_id, ts)
        a = index.analyse(version)
        if a is None:
            continue
        matches = any(t in exact or t.startswith(prefix) for t in a.tf)
        if matches and a.filter_keys[0] == encode_key_part("x"):
            out[doc_id] = version
    return out


@pytest.mark.parametrize("seed", range(6))
def test_index_matches_a_scan_at_every_retained_snapshot(seed: int) -> None:
    rng = random.Random(seed)
    store = Store()
    table = store.create_table("docs")
    definition = SearchIndexDefinition("s", "body", ("tag",))
    ids = [f"{i:031d}" for i in range(30)]
    created: dict[str, float] = {}
    snapshots: list[int] = []
    index = None
    for step in range(160):
        undo = UndoRecord(store.next_ts())
        for _ in range(rng.randint(1, 3)):
            doc_id = rng.choice(ids)
            if rng.random() < 0.2:
                new = None
            else:
                created.setdefault(doc_id, float(step))
                body: Any = " ".join(rng.choices(WORDS, k=rng.randint(0, 4)))
                if rng.random() < 0.1:
                    body = 7.0  # not a string: not indexed
                new = {"_id": doc_id, "_creationTime": created[doc_id], "body": body,
                       "tag": rng.choice(["x", "y"])}  # fmt: skip
            if new is None and table.get(doc_id, None) is None:
                continue
            store.write(table, doc_id, new, 10, undo)
        if rng.random() < 0.15:
            store.undo(undo)
        else:
            store.write_entries(undo)
            store.mark_durable(undo.ts)
            snapshots.append(undo.ts)
        if step == 40:
            index = search_index(store, table, definition, ["s"])
        if rng.random() < 0.1:
            store.collect(store.durable_ts - rng.randint(0, 3) * 10**6)
        if index is None:
            continue
        for ts in [None, *[t for t in snapshots[-5:] if t >= store.gc_horizon]]:
            exact = {rng.choice(WORDS)}
            prefix = rng.choice(["ap", "ban", "c", "fig", "zz"])
            found = index.search(ts, exact, prefix, [(0, encode_key_part("x"))])
            expected = _brute_force(table, index, ids, ts, exact, prefix)
            assert {e[2] for e in found} == set(expected), (seed, step, ts)
            for _, _, doc_id, doc in found:
                assert (doc if doc is not None else table.doc(doc_id)) is expected[doc_id]
    # Once every old version is collected, every document is clean and the postings exact.
    # A later commit first: a transaction undone at the end wrote at a ts past the durable one,
    # and its documents are cleaned once the horizon passes that ts.
    store.mark_durable(store.next_ts())
    store.collect(store.durable_ts)
    assert index is not None
    index.clean(10**6)
    assert not index.dirty
    for term, docs in index.postings.items():
        for doc_id, count in docs.items():
            a = index.analyse(table.doc(doc_id))
            assert a is not None and a.tf[term] == count


def test_a_redefined_index_is_rebuilt_and_an_undeclared_one_dropped() -> None:
    store = Store()
    table = store.create_table("docs")
    undo = UndoRecord(store.next_ts())
    store.write(table, "a" * 31, {"_id": "a" * 31, "_creationTime": 1.0, "t": "hi", "u": "yo"},
                10, undo)  # fmt: skip
    first = search_index(store, table, SearchIndexDefinition("s", "t"), ["s"])
    assert search_index(store, table, SearchIndexDefinition("s", "t"), ["s"]) is first
    second = search_index(store, table, SearchIndexDefinition("s", "u"), ["s", "other"])
    assert second is not first and "yo" in second.postings
    search_index(store, table, SearchIndexDefinition("other", "t"), ["other"])
    assert table.search is not None and set(table.search.indexes) == {"other"}

"""paginate(): opaque cursors, every pre-existing document exactly once while inserts happen,
desc order, index ranges, filters, endCursor, and cursor errors."""

from __future__ import annotations

import random
from typing import Any

import pytest
from conftest import failure_message, ok

SCHEMA = """
from pyconvex import define_schema, define_table, v

schema = define_schema({
    "items": define_table({"n": v.float64(), "tag": v.string()})
        .index("by_n", ["n"])
        .index("by_tag_n", ["tag", "n"]),
    "others": define_table({"x": v.float64()}),
})
"""

ITEMS = """
from pyconvex import mutation, pagination_opts_validator, query, v


@mutation(args={"n": v.float64(), "tag": v.string()})
async def add(ctx, n, tag):
    return await ctx.db.insert("items", {"n": n, "tag": tag})


@mutation(args={"id": v.id("items")})
async def remove(ctx, id):
    await ctx.db.delete(id)


@query(args={"opts": v.any(), "index": v.optional(v.string()), "order": v.optional(v.string()),
             "tag": v.optional(v.string()), "even": v.optional(v.boolean())})
async def page(ctx, opts, index="by_creation_time", order="asc", tag=None, even=False):
    if tag is not None:
        q = ctx.db.query("items").with_index("by_tag_n", lambda q: q.eq("tag", tag))
    else:
        q = ctx.db.query("items").with_index(index)
    q = q.order(order)
    if even:
        q = q.filter(lambda f: f.eq(f.mod(f.field("n"), 2.0), 0.0))
    result = await q.paginate(opts)
    docs = result["page"]
    return {**result, "page": [d["n"] for d in docs], "ids": [d["_id"] for d in docs]}


@query(args={"paginationOpts": pagination_opts_validator})
async def standard(ctx, paginationOpts):
    return await ctx.db.query("items").paginate(paginationOpts)


@query(args={"opts": v.any()})
async def others(ctx, opts):
    return await ctx.db.query("others").paginate(opts)


@query
async def twice(ctx):
    await ctx.db.query("items").paginate({"numItems": 1, "cursor": None})
    return await ctx.db.query("items").paginate({"numItems": 1, "cursor": None})
"""


@pytest.fixture
async def dep(deployment: Any) -> Any:
    return await deployment({"schema.py": SCHEMA, "items.py": ITEMS})


async def add(dep: Any, n: float, tag: str = "t") -> str:
    return ok(await dep.run_mutation("items:add", {"n": float(n), "tag": tag}))  # type: ignore[no-any-return]


def page(dep: Any, num: int, cursor: str | None, **kw: Any) -> dict[str, Any]:
    return ok(dep.run_query("items:page", {"opts": {"numItems": num, "cursor": cursor}, **kw}))  # type: ignore[no-any-return]


def all_pages(dep: Any, num: int, **kw: Any) -> list[list[float]]:
    pages, cursor = [], None
    while True:
        p = page(dep, num, cursor, **kw)
        pages.append(p["page"])
        if p["isDone"]:
            return pages
        cursor = p["continueCursor"]


async def test_pages_cover_the_table_in_order(dep: Any) -> None:
    for i in range(10):
        await add(dep, i)
    assert all_pages(dep, 3) == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    assert all_pages(dep, 5, order="desc") == [[9, 8, 7, 6, 5], [4, 3, 2, 1, 0], []]
    assert all_pages(dep, 20) == [list(range(10))]


async def test_page_shape_and_opaque_cursor(dep: Any) -> None:
    await add(dep, 1)
    await add(dep, 2)
    first = ok(dep.run_query("items:standard", {"paginationOpts": {"numItems": 1, "cursor": None}}))
    assert set(first) == {"page", "isDone", "continueCursor"}
    assert [d["n"] for d in first["page"]] == [1.0] and first["isDone"] is False
    assert isinstance(first["continueCursor"], str) and first["continueCursor"]
    second = ok(
        dep.run_query(
            "items:standard", {"paginationOpts": {"numItems": 5, "cursor": first["continueCursor"]}}
        )
    )
    assert [d["n"] for d in second["page"]] == [2.0] and second["isDone"] is True
    # The end cursor answers with an empty, done page.
    end = ok(
        dep.run_query(
            "items:standard",
            {"paginationOpts": {"numItems": 5, "cursor": second["continueCursor"]}},
        )
    )
    assert end["page"] == [] and end["isDone"] is True


async def test_snake_case_num_items(dep: Any) -> None:
    for i in range(3):
        await add(dep, i)
    p = ok(dep.run_query("items:page", {"opts": {"num_items": 2, "cursor": None}}))
    assert p["page"] == [0.0, 1.0]


async def test_empty_table(dep: Any) -> None:
    p = page(dep, 5, None)
    assert p["page"] == [] and p["isDone"] is True


@pytest.mark.parametrize(
    "kw", [{}, {"order": "desc"}, {"index": "by_n"}, {"index": "by_n", "order": "desc"}]
)
async def test_inserts_between_pages_return_every_preexisting_document_once(
    dep: Any, kw: dict[str, Any]
) -> None:
    rng = random.Random(7)
    existing = {await add(dep, rng.random() * 100) for _ in range(60)}
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        p = page(dep, 7, cursor, **kw)
        seen.extend(p["ids"])
        pages += 1
        # New documents land anywhere in by_n, and at the newest end by creation time.
        for _ in range(3):
            await add(dep, rng.random() * 100)
        if p["isDone"]:
            break
        cursor = p["continueCursor"]
    pre = [i for i in seen if i in existing]
    assert len(seen) == len(set(seen)), "a document was returned twice"
    assert set(pre) == existing, "a pre-existing document was skipped"
    assert pages >= 60 // 7


async def test_deletes_between_pages_never_repeat_a_document(dep: Any) -> None:
    ids = [await add(dep, i) for i in range(20)]
    seen: list[float] = []
    cursor = None
    while True:
        p = page(dep, 4, cursor, index="by_n")
        seen.extend(p["page"])
        if p["isDone"]:
            break
        cursor = p["continueCursor"]
        # Delete the last row of the page just read (the cursor's own document) and a later one.
        ok(await dep.run_mutation("items:remove", {"id": ids[int(p["page"][-1])]}))
        later = int(p["page"][-1]) + 2
        if later < 20:
            ok(await dep.run_mutation("items:remove", {"id": ids[later]}))
    assert len(seen) == len(set(seen))
    assert seen == sorted(seen)
    deleted_later = {int(x) + 2 for x in seen}
    assert set(range(20)) - set(seen) <= deleted_later


async def test_paginate_an_index_range_with_ties(dep: Any) -> None:
    for i in range(6):
        await add(dep, i % 2, "a")
        await add(dep, 10 + i, "b")
    assert all_pages(dep, 4, tag="a") == [[0, 0, 0, 1], [1, 1]]
    assert all_pages(dep, 4, tag="b", order="desc") == [[15, 14, 13, 12], [11, 10]]


async def test_filtered_pages_may_be_short_but_cover_everything(dep: Any) -> None:
    for i in range(10):
        await add(dep, i)
    pages = all_pages(dep, 2, even=True)
    assert [n for p in pages for n in p] == [0, 2, 4, 6, 8]
    assert all(len(p) <= 2 for p in pages)


async def test_maximum_rows_read_ends_a_page_early(dep: Any) -> None:
    for i in range(10):
        await add(dep, i)
    p = ok(
        dep.run_query(
            "items:page",
            {"opts": {"numItems": 5, "cursor": None, "maximumRowsRead": 3}, "even": True},
        )
    )
    assert p["page"] == [0.0, 2.0] and p["isDone"] is False
    rest = ok(
        dep.run_query(
            "items:page", {"opts": {"numItems": 5, "cursor": p["continueCursor"]}, "even": True}
        )
    )
    assert rest["page"] == [4.0, 6.0, 8.0]


async def test_end_cursor_keeps_the_page_end_and_grows_with_inserts(dep: Any) -> None:
    for i in range(6):
        await add(dep, i * 10)
    first = page(dep, 3, None, index="by_n")
    assert first["page"] == [0, 10, 20]
    again = ok(
        dep.run_query(
            "items:page",
            {
                "opts": {"numItems": 3, "cursor": None, "endCursor": first["continueCursor"]},
                "index": "by_n",
            },
        )
    )
    assert again["page"] == [0, 10, 20] and again["continueCursor"] == first["continueCursor"]
    await add(dep, 15)
    await add(dep, 25)  # after the page's end: stays out
    grown = ok(
        dep.run_query(
            "items:page",
            {
                "opts": {"numItems": 3, "cursor": None, "endCursor": first["continueCursor"]},
                "index": "by_n",
            },
        )
    )
    assert grown["page"] == [0, 10, 15, 20]
    nxt = page(dep, 3, first["continueCursor"], index="by_n")
    assert nxt["page"] == [25, 30, 40]


async def test_paginated_query_journal_pins_the_end(dep: Any) -> None:
    for i in range(5):
        await add(dep, i)
    r = dep.run_query("items:page", {"opts": {"numItems": 2, "cursor": None}})
    assert r.journal == ok(r)["continueCursor"]
    await add(dep, -1)  # by creation time it is newest: outside the first page's end
    rerun = dep.run_query(
        "items:page", {"opts": {"numItems": 2, "cursor": None}}, journal=r.journal
    )
    assert ok(rerun)["page"] == [0.0, 1.0]


@pytest.mark.parametrize("cursor", ["garbage!!", "bm90IGEgY3Vyc29y", "MWl0ZW1zAGJ5X24AeA"])
async def test_malformed_cursor_is_an_invalid_cursor_error(dep: Any, cursor: str) -> None:
    await add(dep, 1)
    r = dep.run_query("items:page", {"opts": {"numItems": 1, "cursor": cursor}})
    assert "InvalidCursor" in failure_message(r)


async def test_cursor_of_another_query_is_refused(dep: Any) -> None:
    for i in range(3):
        await add(dep, i)
    cursor = page(dep, 1, None)["continueCursor"]
    msg = failure_message(
        dep.run_query("items:page", {"opts": {"numItems": 1, "cursor": cursor}, "index": "by_n"})
    )
    assert "InvalidCursor" in msg and "items.by_n" in msg and "cursor null" in msg
    msg = failure_message(
        dep.run_query("items:others", {"opts": {"numItems": 1, "cursor": cursor}})
    )
    assert "InvalidCursor" in msg


@pytest.mark.parametrize(
    ("opts", "expected"),
    [
        ({"cursor": None}, "numItems"),
        ({"numItems": -1, "cursor": None}, "numItems"),
        ({"numItems": 1, "cursor": None, "bogus": 1}, "unknown pagination option"),
        ({"numItems": 1, "cursor": 5}, "cursor must be a string or null"),
        ("not a dict", "paginate() takes"),
    ],
)
async def test_bad_pagination_options(dep: Any, opts: Any, expected: str) -> None:
    assert expected in failure_message(dep.run_query("items:page", {"opts": opts}))


async def test_one_paginated_query_per_function(dep: Any) -> None:
    assert "only one paginated query" in failure_message(dep.run_query("items:twice", {}))

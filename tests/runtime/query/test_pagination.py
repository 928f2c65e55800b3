"""paginate(): opaque cursors, every pre-existing document exactly once while inserts happen,
desc order, index ranges, filters, endCursor, and cursor errors."""

from __future__ import annotations

import random
from typing import Any

import pytest
from support.deployment import failure_message, ok

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


@mutation(args={"count": v.float64()})
async def add_many(ctx, count):
    for i in range(int(count)):
        await ctx.db.insert("items", {"n": float(i), "tag": "many"})


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
    # Convex's whole result: a page of one row has no middle to split at.
    assert set(first) == {"page", "isDone", "continueCursor", "splitCursor", "pageStatus"}
    assert first["splitCursor"] is None and first["pageStatus"] is None
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
    assert p["pageStatus"] == "SplitRequired"  # incomplete: the client must split it
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
        ({"cursor": None}, "`options.numItems` must be a positive number. Received `undefined`"),
        ({"numItems": -1, "cursor": None}, "`options.numItems` must be a positive number"),
        ({"numItems": 0, "cursor": None}, "Must request at least 1 document while paginating"),
        ({"numItems": 32001, "cursor": None}, "Requested too many items: 32001"),
        (
            {"numItems": 1, "cursor": None, "maximumRowsRead": 0},
            "maximumRowsRead and maximumBytesRead must be greater than 0",
        ),
        (
            {"numItems": 1, "cursor": None, "maximumBytesRead": 0},
            "maximumRowsRead and maximumBytesRead must be greater than 0",
        ),
        ({"numItems": 1, "cursor": None, "bogus": 1}, "unknown pagination option"),
        ({"numItems": 1, "cursor": 5}, "cursor must be a string or null"),
        ("not a dict", "paginate() takes"),
    ],
)
async def test_bad_pagination_options(dep: Any, opts: Any, expected: str) -> None:
    assert expected in failure_message(dep.run_query("items:page", {"opts": opts}))


async def test_one_paginated_query_per_function(dep: Any) -> None:
    msg = failure_message(dep.run_query("items:twice", {}))
    assert "ran multiple paginated queries. Convex only supports a single paginated" in msg


def opts_page(dep: Any, opts: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return ok(dep.run_query("items:page", {"opts": opts, **kw}))  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("order", "left", "right"),
    [("asc", [0, 10, 20, 30], [40, 50, 60]), ("desc", [60, 50, 40, 30], [20, 10, 0])],
)
async def test_split_cursor_cuts_a_page_into_two_that_cover_it(
    dep: Any, order: str, left: list[float], right: list[float]
) -> None:
    for i in range(7):
        await add(dep, i * 10)
    first = page(dep, 7, None, index="by_n", order=order)
    assert first["page"] == left + right and first["pageStatus"] is None
    split, end = first["splitCursor"], first["continueCursor"]
    assert isinstance(split, str) and split not in (end, "")
    kw = {"index": "by_n", "order": order}
    one = opts_page(dep, {"numItems": 7, "cursor": None, "endCursor": split}, **kw)
    two = opts_page(dep, {"numItems": 7, "cursor": split, "endCursor": end}, **kw)
    # (cursor, split] and (split, end]: the middle row ends the first half.
    assert one["page"] == left and one["continueCursor"] == split and one["isDone"] is False
    assert two["page"] == right and two["continueCursor"] == end


async def test_split_cursor_counts_the_rows_a_filter_dropped(dep: Any) -> None:
    for i in range(10):
        await add(dep, i)
    first = page(dep, 3, None, even=True)  # reads rows 0..4, keeps 0, 2, 4
    assert first["page"] == [0, 2, 4]
    one = opts_page(
        dep, {"numItems": 3, "cursor": None, "endCursor": first["splitCursor"]}, even=True
    )
    assert one["page"] == [0, 2]  # the middle of the five rows read is row 2


async def test_a_page_of_two_rows_has_no_split_cursor(dep: Any) -> None:
    for i in range(5):
        await add(dep, i)
    assert page(dep, 2, None)["splitCursor"] is None
    assert isinstance(page(dep, 3, None)["splitCursor"], str)


async def test_split_recommended_past_three_quarters_of_maximum_rows_read(dep: Any) -> None:
    for i in range(10):
        await add(dep, i * 10)
    base = {"cursor": None, "maximumRowsRead": 8}
    assert opts_page(dep, {**base, "numItems": 6})["pageStatus"] is None
    seven = opts_page(dep, {**base, "numItems": 7})
    assert len(seven["page"]) == 7 and seven["pageStatus"] == "SplitRecommended"
    # A page bounded by its end cursor reads its whole range, whatever the limit, and asks
    # to be split once it grew past 3/4 of it.
    first = opts_page(dep, {"numItems": 3, "cursor": None, "maximumRowsRead": 4}, index="by_n")
    assert first["page"] == [0, 10, 20] and first["pageStatus"] is None
    await add(dep, 5)
    await add(dep, 15)
    grown = opts_page(
        dep,
        {"numItems": 3, "cursor": None, "endCursor": first["continueCursor"], "maximumRowsRead": 4},
        index="by_n",
    )
    assert grown["page"] == [0, 5, 10, 15, 20] and grown["pageStatus"] == "SplitRecommended"


async def test_split_required_when_maximum_bytes_read_stops_a_page(dep: Any) -> None:
    for i in range(4):
        await add(dep, i)
    first = opts_page(dep, {"numItems": 3, "cursor": None, "maximumBytesRead": 1})
    # The row that went over the limit is returned; the page is incomplete.
    assert first["page"] == [0] and first["isDone"] is False
    assert first["pageStatus"] == "SplitRequired"
    rest = page(dep, 5, first["continueCursor"])
    assert rest["page"] == [1, 2, 3] and rest["isDone"] is True


async def test_a_range_that_ends_at_the_read_limit_is_done(dep: Any) -> None:
    for i in range(3):
        await add(dep, i)
    p = opts_page(dep, {"numItems": 5, "cursor": None, "maximumRowsRead": 3})
    # Complete (not SplitRequired), though it read more than 3/4 of the limit.
    assert p["page"] == [0, 1, 2] and p["isDone"] is True
    assert p["pageStatus"] == "SplitRecommended"


async def test_split_recommended_for_a_page_of_more_than_6144_items(dep: Any) -> None:
    ok(await dep.run_mutation("items:add_many", {"count": 6145.0}))
    big = page(dep, 6145, None)
    assert len(big["page"]) == 6145 and big["pageStatus"] == "SplitRecommended"
    assert page(dep, 6144, None)["pageStatus"] is None

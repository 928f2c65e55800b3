"""ctx.db.query: index ranges (prefix eq, open/closed bounds, order, mixed types, missing and
nested fields), range errors, filter expressions, take/first/unique/collect, async for."""

from __future__ import annotations

from typing import Any

import pytest
from support.deployment import failure_message, ok

from pyconvex import UNSET, Int64

SCHEMA = """
from pyconvex import define_schema, define_table, v

schema = define_schema({
    "items": define_table({
        "name": v.string(),
        "channel": v.optional(v.string()),
        "n": v.optional(v.float64()),
        "value": v.optional(v.any()),
        "settings": v.optional(v.object({"visibility": v.optional(v.string())})),
    })
    .index("by_channel_n", ["channel", "n"])
    .index("by_value", ["value"])
    .index("by_visibility", ["settings.visibility"]),
})
"""

ITEMS = """
from pyconvex import UNSET, internal_mutation, query, v


@internal_mutation(args={"docs": v.array(v.any())})
async def seed(ctx, docs):
    return [await ctx.db.insert("items", d) for d in docs]


def _apply(ops):
    def build(q):
        for op, field, value in ops:
            q = getattr(q, op)(field, UNSET if value == "<undefined>" else value)
        return q
    return build


@internal_mutation(args={"id": v.id("items"), "fields": v.any()})
async def patch(ctx, id, fields):
    await ctx.db.patch(id, fields)


@internal_mutation(args={"id": v.id("items")})
async def remove(ctx, id):
    await ctx.db.delete(id)


@query(args={"index": v.string(), "ops": v.array(v.any()), "order": v.optional(v.string()),
             "limit": v.optional(v.float64())})
async def scan(ctx, index, ops, order="asc", limit=None):
    q = ctx.db.query("items").with_index(index, _apply(ops) if ops else None).order(order)
    docs = await (q.take(int(limit)) if limit is not None else q.collect())
    return [d["name"] for d in docs]


@query(args={"filter": v.string()})
async def filtered(ctx, filter):
    exprs = {
        "eq": lambda q: q.eq(q.field("channel"), "a"),
        "neq": lambda q: q.neq(q.field("channel"), "a"),
        "gt_n": lambda q: q.gt(q.field("n"), 2.0),
        "lt_n": lambda q: q.lt(q.field("n"), 2.0),
        "and": lambda q: q.and_(q.eq(q.field("channel"), "a"), q.gte(q.field("n"), 2.0)),
        "or": lambda q: q.or_(q.eq(q.field("channel"), "b"), q.eq(q.field("n"), 1.0)),
        "not": lambda q: q.not_(q.eq(q.field("channel"), "a")),
        "arith": lambda q: q.eq(q.add(q.field("n"), 1.0), q.mul(q.field("n"), 2.0)),
        "nested": lambda q: q.eq(q.field("settings.visibility"), "public"),
        "missing": lambda q: q.eq(q.field("channel"), None),
        "undefined": lambda q: q.eq(q.field("channel"), UNSET),
        "constant": lambda q: True,
    }
    docs = await ctx.db.query("items").filter(exprs[filter]).collect()
    return [d["name"] for d in docs]


@query
async def terminals(ctx):
    base = lambda: ctx.db.query("items").with_index("by_channel_n", lambda q: q.eq("channel", "a"))
    first = await base().first()
    none = await ctx.db.query("items").with_index(
        "by_channel_n", lambda q: q.eq("channel", "zzz")).first()
    only = await ctx.db.query("items").with_index(
        "by_channel_n", lambda q: q.eq("channel", "c")).unique()
    missing = await ctx.db.query("items").with_index(
        "by_channel_n", lambda q: q.eq("channel", "zzz")).unique()
    seen = []
    async for doc in base().order("desc"):
        seen.append(doc["name"])
    take0 = await base().take(0)
    return {"first": first["name"], "none": none, "only": only["name"], "missing": missing,
            "iter": seen, "take0": take0}


@query
async def not_unique(ctx):
    return await ctx.db.query("items").with_index(
        "by_channel_n", lambda q: q.eq("channel", "a")).unique()


@query
async def reused(ctx):
    q = ctx.db.query("items")
    await q.take(1)
    return await q.take(1)


@query(args={"n": v.any()})
async def bad_take(ctx, n):
    return await ctx.db.query("items").take(n)


@query
async def bad_order(ctx):
    return await ctx.db.query("items").order("up").collect()


@query
async def by_id(ctx):
    first = await ctx.db.query("items").first()
    same = await ctx.db.query("items").with_index("by_id", lambda q: q.eq("_id", first["_id"])).collect()
    every = await ctx.db.query("items").with_index("by_id").collect()
    return {"same": [d["name"] for d in same], "all": [d["_id"] for d in every]}


@query(args={"after": v.float64()})
async def created_after(ctx, after):
    docs = await ctx.db.query("items").with_index(
        "by_creation_time", lambda q: q.gt("_creationTime", after)).collect()
    return [d["name"] for d in docs]


@query
async def mutate_result(ctx):
    doc = await ctx.db.query("items").first()
    doc["name"] = "changed"
    doc2 = await ctx.db.query("items").first()
    return doc2["name"]
"""


@pytest.fixture
async def dep(deployment: Any) -> Any:
    return await deployment({"schema.py": SCHEMA, "items.py": ITEMS})


async def seed(dep: Any, docs: list[dict[str, Any]]) -> list[str]:
    return ok(await dep.run_mutation("items:seed", {"docs": docs}, allow_internal=True))


def _ops(ops: tuple[tuple[str, str, Any], ...]) -> list[list[Any]]:
    # Arguments cannot hold undefined: the handler maps this marker back to UNSET.
    return [[op, f, "<undefined>" if value is UNSET else value] for op, f, value in ops]


def scan(
    dep: Any, index: str, *ops: tuple[str, str, Any], order: str = "asc", limit: int | None = None
) -> list[str]:
    args: dict[str, Any] = {"index": index, "ops": _ops(ops), "order": order}
    if limit is not None:
        args["limit"] = float(limit)
    return ok(dep.run_query("items:scan", args))  # type: ignore[no-any-return]


def scan_error(dep: Any, index: str, *ops: tuple[str, str, Any]) -> str:
    return failure_message(dep.run_query("items:scan", {"index": index, "ops": _ops(ops)}))


GRID = [  # (channel, n) in insertion order; names say where they are
    ("b", 1.0),
    ("a", 3.0),
    ("a", 1.0),
    ("a", 2.0),
    ("c", 1.0),
    ("a", 2.0),
    ("a", 5.0),
    ("b", 4.0),
]


@pytest.fixture
async def grid(dep: Any) -> Any:
    await seed(
        dep, [{"name": f"{c}{n:g}#{i}", "channel": c, "n": n} for i, (c, n) in enumerate(GRID)]
    )
    return dep


# -- compound index: eq prefix, bounds, order ---------------------------------------------------
async def test_eq_prefix_on_compound_index_orders_by_next_field_then_creation(grid: Any) -> None:
    assert scan(grid, "by_channel_n", ("eq", "channel", "a")) == [
        "a1#2",
        "a2#3",
        "a2#5",
        "a3#1",
        "a5#6",
    ]
    assert scan(grid, "by_channel_n", ("eq", "channel", "b")) == ["b1#0", "b4#7"]
    assert scan(grid, "by_channel_n", ("eq", "channel", "zzz")) == []
    assert scan(grid, "by_channel_n", ("eq", "channel", "a"), ("eq", "n", 2.0)) == ["a2#3", "a2#5"]


async def test_whole_index_is_ordered_by_all_fields(grid: Any) -> None:
    assert scan(grid, "by_channel_n") == [
        "a1#2",
        "a2#3",
        "a2#5",
        "a3#1",
        "a5#6",
        "b1#0",
        "b4#7",
        "c1#4",
    ]


@pytest.mark.parametrize(
    ("bounds", "expected"),
    [
        ([("gt", "n", 2.0)], ["a3#1", "a5#6"]),
        ([("gte", "n", 2.0)], ["a2#3", "a2#5", "a3#1", "a5#6"]),
        ([("lt", "n", 2.0)], ["a1#2"]),
        ([("lte", "n", 2.0)], ["a1#2", "a2#3", "a2#5"]),
        ([("gt", "n", 1.0), ("lt", "n", 5.0)], ["a2#3", "a2#5", "a3#1"]),
        ([("gte", "n", 1.0), ("lte", "n", 5.0)], ["a1#2", "a2#3", "a2#5", "a3#1", "a5#6"]),
        ([("lt", "n", 5.0), ("gt", "n", 1.0)], ["a2#3", "a2#5", "a3#1"]),  # any order of bounds
        ([("gt", "n", 2.0), ("lt", "n", 3.0)], []),  # empty open interval
        ([("gte", "n", 3.0), ("lte", "n", 3.0)], ["a3#1"]),  # one point
        ([("gt", "n", 5.0), ("lt", "n", 1.0)], []),  # inverted
        ([("gt", "n", 1.5), ("lt", "n", 2.5)], ["a2#3", "a2#5"]),  # bounds between keys
    ],
)
async def test_bounds_after_eq_prefix(grid: Any, bounds: list[Any], expected: list[str]) -> None:
    assert scan(grid, "by_channel_n", ("eq", "channel", "a"), *bounds) == expected
    assert (
        scan(grid, "by_channel_n", ("eq", "channel", "a"), *bounds, order="desc") == expected[::-1]
    )


async def test_bounds_on_first_field_of_compound_index(grid: Any) -> None:
    assert scan(grid, "by_channel_n", ("gt", "channel", "a")) == ["b1#0", "b4#7", "c1#4"]
    assert scan(grid, "by_channel_n", ("gte", "channel", "b"), ("lt", "channel", "c")) == [
        "b1#0",
        "b4#7",
    ]
    assert scan(grid, "by_channel_n", ("lte", "channel", "a")) == [
        "a1#2",
        "a2#3",
        "a2#5",
        "a3#1",
        "a5#6",
    ]
    # A prefix of a string is a lower string: "a" < "aa" < "b".
    assert scan(grid, "by_channel_n", ("gt", "channel", "aa"), ("lt", "channel", "bb")) == [
        "b1#0",
        "b4#7",
    ]


async def test_desc_order_and_take_cut_from_the_right_end(grid: Any) -> None:
    assert scan(grid, "by_channel_n", ("eq", "channel", "a"), order="desc") == [
        "a5#6",
        "a3#1",
        "a2#5",
        "a2#3",
        "a1#2",
    ]
    assert scan(grid, "by_channel_n", ("eq", "channel", "a"), order="desc", limit=2) == [
        "a5#6",
        "a3#1",
    ]
    assert scan(grid, "by_channel_n", ("eq", "channel", "a"), limit=2) == ["a1#2", "a2#3"]
    # Equal keys are ordered by _creationTime (then _id): desc reverses that too.
    assert scan(grid, "by_channel_n", ("eq", "channel", "a"), ("eq", "n", 2.0), order="desc") == [
        "a2#5",
        "a2#3",
    ]


async def test_bound_on_implicit_creation_time(grid: Any) -> None:
    docs = ok(grid.run_query("items:by_id", {}))
    assert len(docs["all"]) == len(GRID)
    everything = scan(grid, "by_channel_n", ("eq", "channel", "a"), ("eq", "n", 2.0))
    assert everything == ["a2#3", "a2#5"]
    assert scan(
        grid, "by_channel_n", ("eq", "channel", "a"), ("eq", "n", 2.0), ("gt", "_creationTime", 0.0)
    ) == ["a2#3", "a2#5"]
    assert (
        scan(
            grid,
            "by_channel_n",
            ("eq", "channel", "a"),
            ("eq", "n", 2.0),
            ("lt", "_creationTime", 0.0),
        )
        == []
    )


async def test_by_creation_time_is_insertion_order(grid: Any) -> None:
    names = [f"{c}{n:g}#{i}" for i, (c, n) in enumerate(GRID)]
    assert scan(grid, "by_creation_time") == names
    assert scan(grid, "by_creation_time", order="desc") == names[::-1]
    assert ok(grid.run_query("items:created_after", {"after": 0.0})) == names


async def test_by_id_index(grid: Any) -> None:
    r = ok(grid.run_query("items:by_id", {}))
    assert r["same"] == ["b1#0"]
    assert r["all"] == sorted(r["all"])


# -- mixed types, missing and nested fields ----------------------------------------------------
MIXED = [
    ("object", {"a": 1.0}),
    ("string_b", "b"),
    ("true", True),
    ("float_neg", -1.5),
    ("array", [1.0]),
    ("int64_big", Int64(100)),
    ("bytes", b"\x00\x01"),
    ("null", None),
    ("string_a", "a"),
    ("false", False),
    ("float_small", 0.5),
    ("missing", UNSET),
    ("int64_neg", Int64(-3)),
    ("empty_string", ""),
    ("array_longer", [1.0, 2.0]),
]
MIXED_ORDER = [
    "missing",
    "null",
    "int64_neg",
    "int64_big",
    "float_neg",
    "float_small",
    "false",
    "true",
    "empty_string",
    "string_a",
    "string_b",
    "bytes",
    "array",
    "array_longer",
    "object",
]


@pytest.fixture
async def mixed(dep: Any) -> Any:
    docs = [
        {"name": name} if value is UNSET else {"name": name, "value": value}
        for name, value in MIXED
    ]
    await seed(dep, docs)
    return dep


async def test_mixed_value_types_sort_in_convex_total_order(mixed: Any) -> None:
    # undefined < null < int64 < float64 < boolean < string < bytes < array < object
    assert scan(mixed, "by_value") == MIXED_ORDER
    assert scan(mixed, "by_value", order="desc") == MIXED_ORDER[::-1]


@pytest.mark.parametrize(
    ("ops", "expected"),
    [
        ([("eq", "value", None)], ["null"]),
        ([("eq", "value", Int64(100))], ["int64_big"]),
        ([("eq", "value", 100.0)], []),  # float64 100 is not int64 100
        ([("eq", "value", "a")], ["string_a"]),
        ([("eq", "value", [1.0])], ["array"]),
        ([("eq", "value", {"a": 1.0})], ["object"]),
        ([("gt", "value", None)], MIXED_ORDER[2:]),  # everything but undefined and null
        ([("gte", "value", None)], MIXED_ORDER[1:]),
        ([("lt", "value", "")], MIXED_ORDER[:8]),  # all non-strings below strings
        ([("gte", "value", ""), ("lt", "value", b"")], ["empty_string", "string_a", "string_b"]),
        ([("gt", "value", Int64(10**12))], MIXED_ORDER[4:]),  # any float64 > any int64
        ([("lt", "value", -1e300)], MIXED_ORDER[:4]),
        ([("gt", "value", False), ("lte", "value", True)], ["true"]),
        ([("gte", "value", [1.0]), ("lt", "value", {})], ["array", "array_longer"]),
    ],
)
async def test_ranges_over_mixed_types(mixed: Any, ops: list[Any], expected: list[str]) -> None:
    assert scan(mixed, "by_value", *ops) == expected


async def test_missing_field_sorts_first_and_matches_eq_undefined(mixed: Any) -> None:
    assert scan(mixed, "by_value", limit=1) == ["missing"]
    assert scan(mixed, "by_value", ("eq", "value", UNSET)) == ["missing"]
    assert scan(mixed, "by_value", ("lt", "value", None)) == ["missing"]


async def test_nested_field_path_index(dep: Any) -> None:
    await seed(
        dep,
        [
            {"name": "pub1", "settings": {"visibility": "public"}},
            {"name": "priv", "settings": {"visibility": "private"}},
            {"name": "nosettings"},
            {"name": "novis", "settings": {}},
            {"name": "pub2", "settings": {"visibility": "public"}},
        ],
    )
    assert scan(dep, "by_visibility", ("eq", "settings.visibility", "public")) == ["pub1", "pub2"]
    assert scan(dep, "by_visibility", ("eq", "settings.visibility", "private")) == ["priv"]
    # Both "no settings" and "settings without visibility" are undefined at the path.
    assert scan(dep, "by_visibility", ("eq", "settings.visibility", UNSET)) == [
        "nosettings",
        "novis",
    ]
    assert scan(dep, "by_visibility") == ["nosettings", "novis", "priv", "pub1", "pub2"]
    assert scan(dep, "by_visibility", ("gt", "settings.visibility", "private")) == ["pub1", "pub2"]


async def test_missing_fields_in_compound_index(dep: Any) -> None:
    await seed(
        dep,
        [
            {"name": "a-none", "channel": "a"},
            {"name": "none-none"},
            {"name": "a-1", "channel": "a", "n": 1.0},
            {"name": "a-null-n", "channel": "a", "n": -5.0},
        ],
    )
    assert scan(dep, "by_channel_n") == ["none-none", "a-none", "a-null-n", "a-1"]
    assert scan(dep, "by_channel_n", ("eq", "channel", "a"), ("eq", "n", UNSET)) == ["a-none"]
    assert scan(dep, "by_channel_n", ("eq", "channel", "a"), ("lt", "n", 0.0)) == [
        "a-none",
        "a-null-n",
    ]


async def test_patch_and_delete_move_documents_within_indexes(dep: Any) -> None:
    x, y, z = await seed(
        dep,
        [
            {"name": "x", "channel": "a", "n": 1.0},
            {"name": "y", "channel": "a", "n": 2.0},
            {"name": "z", "channel": "b", "n": 0.0},
        ],
    )
    assert scan(dep, "by_channel_n", ("eq", "channel", "a")) == ["x", "y"]
    ok(await dep.run_mutation("items:patch", {"id": x, "fields": {"n": 3.0}}, allow_internal=True))
    assert scan(dep, "by_channel_n", ("eq", "channel", "a")) == ["y", "x"]
    ok(
        await dep.run_mutation(
            "items:patch", {"id": z, "fields": {"channel": "a"}}, allow_internal=True
        )
    )
    assert scan(dep, "by_channel_n", ("eq", "channel", "a")) == ["z", "y", "x"]
    assert scan(dep, "by_channel_n", ("eq", "channel", "b")) == []
    ok(await dep.run_mutation("items:remove", {"id": y}, allow_internal=True))
    assert scan(dep, "by_channel_n", ("eq", "channel", "a")) == ["z", "x"]
    assert scan(dep, "by_creation_time") == ["x", "z"]


# -- range errors -------------------------------------------------------------------------------
async def test_eq_on_wrong_field_order_is_an_error(dep: Any) -> None:
    msg = scan_error(dep, "by_channel_n", ("eq", "n", 1.0))
    assert "by_channel_n" in msg and "'channel'" in msg and "got 'n'" in msg
    assert "in order" in msg


async def test_second_lower_bound_is_an_error(dep: Any) -> None:
    msg = scan_error(
        dep, "by_channel_n", ("eq", "channel", "a"), ("gt", "n", 1.0), ("gte", "n", 2.0)
    )
    assert "only one lower bound" in msg and "'n'" in msg
    msg = scan_error(dep, "by_channel_n", ("lt", "channel", "a"), ("lte", "channel", "b"))
    assert "only one upper bound" in msg


async def test_bounds_on_two_fields_and_eq_after_bound_are_errors(dep: Any) -> None:
    msg = scan_error(dep, "by_channel_n", ("gt", "channel", "a"), ("lt", "n", 2.0))
    assert "'channel'" in msg and "lt('n')" in msg
    msg = scan_error(dep, "by_channel_n", ("gt", "channel", "a"), ("eq", "n", 2.0))
    assert "must come before range bounds" in msg


async def test_too_many_fields_is_an_error(dep: Any) -> None:
    msg = scan_error(
        dep, "by_value", ("eq", "value", 1.0), ("eq", "_creationTime", 1.0), ("eq", "x", 1.0)
    )
    assert "all are already matched" in msg


async def test_unknown_index_lists_the_indexes(dep: Any) -> None:
    msg = scan_error(dep, "by_chanel")
    assert "'by_chanel'" in msg and "'items'" in msg
    for name in ("by_id", "by_creation_time", "by_channel_n", "by_value", "by_visibility"):
        assert name in msg
    assert "schema.py" in msg


# -- filters ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("eq", ["a3#1", "a1#2", "a2#3", "a2#5", "a5#6"]),
        ("neq", ["b1#0", "c1#4", "b4#7"]),
        ("gt_n", ["a3#1", "a5#6", "b4#7"]),
        ("lt_n", ["b1#0", "a1#2", "c1#4"]),
        ("and", ["a3#1", "a2#3", "a2#5", "a5#6"]),
        ("or", ["b1#0", "a1#2", "c1#4", "b4#7"]),
        ("not", ["b1#0", "c1#4", "b4#7"]),
        ("arith", ["b1#0", "a1#2", "c1#4"]),  # n + 1 == n * 2  <=>  n == 1
        ("constant", [f"{c}{n:g}#{i}" for i, (c, n) in enumerate(GRID)]),
        ("missing", []),  # eq(field, null) does not match a present string
    ],
)
async def test_filter_expressions(grid: Any, name: str, expected: list[str]) -> None:
    assert ok(grid.run_query("items:filtered", {"filter": name})) == expected


async def test_filter_missing_field_semantics(dep: Any) -> None:
    await seed(dep, [{"name": "nochannel"}, {"name": "nullish", "channel": "a", "n": 1.0}])
    # A missing field is undefined: lower than everything, so lt() is true and eq(null) false.
    assert ok(dep.run_query("items:filtered", {"filter": "lt_n"})) == ["nochannel", "nullish"]
    assert ok(dep.run_query("items:filtered", {"filter": "missing"})) == []
    assert ok(dep.run_query("items:filtered", {"filter": "undefined"})) == ["nochannel"]
    await seed(dep, [{"name": "vis", "settings": {"visibility": "public"}}])
    assert ok(dep.run_query("items:filtered", {"filter": "nested"})) == ["vis"]


# -- terminal operations ------------------------------------------------------------------------
async def test_first_unique_take_and_async_for(grid: Any) -> None:
    r = ok(grid.run_query("items:terminals", {}))
    assert r == {
        "first": "a1#2",
        "none": None,
        "only": "c1#4",
        "missing": None,
        "iter": ["a5#6", "a3#1", "a2#5", "a2#3", "a1#2"],
        "take0": [],
    }


async def test_unique_with_two_matches_names_both(grid: Any) -> None:
    ids = ok(grid.run_query("items:by_id", {}))["all"]
    msg = failure_message(grid.run_query("items:not_unique", {}))
    assert "unique() found more than one document in 'items'" in msg
    assert sum(i in msg for i in ids) == 2


async def test_query_cannot_run_twice(grid: Any) -> None:
    assert "already run" in failure_message(grid.run_query("items:reused", {}))


@pytest.mark.parametrize("n", [-1.0, 1.5, "3", True])
async def test_take_rejects_non_counts(grid: Any, n: Any) -> None:
    assert "take() needs a whole number" in failure_message(
        grid.run_query("items:bad_take", {"n": n})
    )


async def test_take_accepts_integral_float(grid: Any) -> None:
    assert len(ok(grid.run_query("items:bad_take", {"n": 3.0}))) == 3


async def test_order_rejects_unknown_direction(grid: Any) -> None:
    assert 'order() takes "asc" or "desc"' in failure_message(grid.run_query("items:bad_order", {}))


async def test_returned_documents_are_copies(grid: Any) -> None:
    assert ok(grid.run_query("items:mutate_result", {})) == "b1#0"


async def test_query_on_table_that_does_not_exist_yet_is_empty(dep: Any) -> None:
    assert scan(dep, "by_channel_n", ("eq", "channel", "a")) == []
    assert scan(dep, "by_creation_time") == []

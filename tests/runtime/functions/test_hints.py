"""The usual slips get a hint saying what to write instead (issue 15.3)."""

from __future__ import annotations

import warnings

import pytest
from support.deployment import DeploymentFactory, failure_message, ok

from pyconvex import Int64, v
from pyconvex.errors import ValidationError
from pyconvex.runtime.functions.loader import ModuleLoadError

SCHEMA = """
from pyconvex import define_schema, define_table, v

schema = define_schema({"todos": define_table({"text": v.string(), "n": v.optional(v.int64())})})
"""

SLIPS = """
from pyconvex import action, mutation, query, v


@query
async def no_await(ctx):
    return ctx.db.query("todos").collect()


@query
async def unfinished(ctx):
    return ctx.db.query("todos")


@query
async def ts_args(ctx, args):
    return args


@query
async def lambda_filter(ctx):
    return await ctx.db.query("todos").filter(lambda d: d["text"] == "x").collect()


@query
async def attribute_filter(ctx):
    return await ctx.db.query("todos").filter(lambda d: d.text == "x").collect()


@action
async def returns_object(ctx):
    return object()


@mutation(args={"n": v.int64()})
async def counts(ctx, n):
    return await ctx.db.insert("todos", {"text": "x", "n": n})
"""


async def test_a_missing_await(deployment: DeploymentFactory) -> None:
    dep = await deployment({"schema.py": SCHEMA, "slips.py": SLIPS})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "coroutine was never awaited" warning either
        msg = failure_message(dep.run_query("slips:no_await"))
    assert "did you forget `await`?" in msg
    msg = failure_message(dep.run_query("slips:unfinished"))
    assert "a query is not its result" in msg and ".collect()" in msg


async def test_typescript_style_args(deployment: DeploymentFactory) -> None:
    dep = await deployment({"schema.py": SCHEMA, "slips.py": SLIPS})
    msg = failure_message(dep.run_query("slips:ts_args", {"text": "hi"}))
    assert "ts_args(ctx, args) takes one argument named 'args'" in msg
    assert "each argument is its own keyword parameter, e.g. ts_args(ctx, text)" in msg


async def test_typescript_style_args_with_a_validator_fail_at_load(
    deployment: DeploymentFactory,
) -> None:
    source = (
        "from pyconvex import query, v\n\n"
        "@query(args={'text': v.string()})\n"
        "async def echo(ctx, args):\n"
        "    return args\n"
    )
    with pytest.raises(ModuleLoadError) as caught:
        await deployment({"echo.py": source})
    text = str(caught.value)
    assert "echo.echo: arguments arrive as keyword parameters" in text
    assert "write async def echo(ctx, text)" in text
    assert "_pyconvex_fn" not in text


async def test_filter_lambdas_that_index_the_document(deployment: DeploymentFactory) -> None:
    dep = await deployment({"schema.py": SCHEMA, "slips.py": SLIPS})
    msg = failure_message(dep.run_query("slips:lambda_filter"))
    assert "write q.field('text') instead of q['text']" in msg
    msg = failure_message(dep.run_query("slips:attribute_filter"))
    assert "q has no 'text'" in msg and "q.field('text')" in msg


def test_a_misspelt_validator() -> None:
    with pytest.raises(
        AttributeError, match=r"v has no validator 'strng'\. Did you mean v\.string\(\)\?"
    ):
        v.strng()  # type: ignore[attr-defined]


async def test_an_action_returning_a_non_convex_value(deployment: DeploymentFactory) -> None:
    dep = await deployment({"schema.py": SCHEMA, "slips.py": SLIPS})
    msg = failure_message(await dep.run_action("slips:returns_object"))
    assert "slips:returns_object returned a value that is not a Convex value" in msg
    assert "goes to the client" in msg


async def test_a_number_where_an_int64_was_meant(deployment: DeploymentFactory) -> None:
    dep = await deployment({"schema.py": SCHEMA, "slips.py": SLIPS})
    msg = failure_message(await dep.run_mutation("slips:counts", {"n": 5.0}))
    assert "must be v.int64(), got float64 5.0" in msg
    assert "Int64(n) in Python" in msg and "(5n) in JavaScript" in msg
    ok(await dep.run_mutation("slips:counts", {"n": Int64(5)}))
    with pytest.raises(ValidationError, match="that is an int64: a BigInt such as 5n in JavaScript"):
        v.float64().validate(Int64(5))

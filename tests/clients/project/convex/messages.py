"""Functions the official-client conformance tests call (tests/clients/)."""

from pyconvex import ConvexError, action, mutation, query, v


@query(args={"author": v.optional(v.string())})
async def list(ctx, author=None):
    q = ctx.db.query("messages")
    if author is not None:
        q = q.with_index("by_author", lambda r: r.eq("author", author))
    return await q.collect()


@query(args={})
async def count(ctx):
    return len(await ctx.db.query("messages").collect())


@mutation(args={"author": v.string(), "body": v.string()})
async def send(ctx, author, body):
    return await ctx.db.insert("messages", {"author": author, "body": body})


@mutation(args={})
async def fail(ctx):
    raise ConvexError({"code": "BAD", "n": 1})


@query(args={})
async def fail_query(ctx):
    raise ConvexError({"code": "BAD", "n": 1})


@query(args={"value": v.any()})
async def echo(ctx, value):
    return value


@mutation(args={"value": v.any()})
async def echo_mutation(ctx, value):
    return value


@action(args={"value": v.any()})
async def echo_action(ctx, value):
    return value


@action(args={"author": v.string(), "body": v.string()})
async def send_via_action(ctx, author, body):
    """Runs a mutation and then a query from an action; returns both results."""
    new_id = await ctx.run_mutation("messages:send", {"author": author, "body": body})
    mine = await ctx.run_query("messages:list", {"author": author})
    return {"id": new_id, "count": float(len(mine))}


@query(args={"tag": v.string(), "paginationOpts": v.any()})
async def paginated(ctx, tag, paginationOpts):
    """Items of one tag in `n` order, one page per call (npm sends `paginationOpts`)."""
    return await (
        ctx.db.query("items")
        .with_index("by_tag_n", lambda r: r.eq("tag", tag))
        .paginate(paginationOpts)
    )


@mutation(args={"tag": v.string(), "n": v.float64()})
async def add_item(ctx, tag, n):
    return await ctx.db.insert("items", {"tag": tag, "n": n})


@mutation(args={"data": v.any()})
async def fail_with(ctx, data):
    """Raises ConvexError(data): its message is the data as compact JSON."""
    raise ConvexError(data)


@query(args={})
async def crash(ctx):
    raise RuntimeError("boom")


@query(args={}, returns=v.string())
async def bad_return(ctx):
    return 5.0

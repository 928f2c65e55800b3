"""Any Convex value, stored and read back (the value-mapping tests)."""

from pyconvex import action, mutation, query, v


@mutation(args={"key": v.string(), "value": v.any()})
async def put(ctx, key, value):
    await ctx.db.insert("values", {"key": key, "value": value})


@query(args={"key": v.string()})
async def get(ctx, key):
    doc = await ctx.db.query("values").with_index("by_key", lambda r: r.eq("key", key)).first()
    return None if doc is None else doc["value"]


@action(args={"value": v.any()})
async def echo(ctx, value):
    return value

from pyconvex import mutation, query, v


@query
async def list(ctx):
    return await ctx.db.query("channels").with_index("by_name").collect()


@mutation(args={"name": v.string()})
async def create(ctx, name):
    existing = await ctx.db.query("channels").with_index(
        "by_name", lambda q: q.eq("name", name)).unique()
    if existing is not None:
        return existing["_id"]
    return await ctx.db.insert("channels", {"name": name})

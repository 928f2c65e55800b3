"""Items of a tag in `n` order, paginated."""

from pyconvex import mutation, pagination_opts_validator, query, v


@query(args={"tag": v.string(), "paginationOpts": pagination_opts_validator})
async def page(ctx, tag, paginationOpts):
    return await (
        ctx.db.query("items")
        .with_index("by_tag_n", lambda r: r.eq("tag", tag))
        .paginate(paginationOpts)
    )


@query(args={"tag": v.string()})
async def all(ctx, tag):
    return await ctx.db.query("items").with_index("by_tag_n", lambda r: r.eq("tag", tag)).collect()


@mutation(args={"tag": v.string(), "ns": v.array(v.float64())})
async def add(ctx, tag, ns):
    for n in ns:
        await ctx.db.insert("items", {"tag": tag, "n": n})

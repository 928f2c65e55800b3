"""Messages: the client tests' subscribe / mutate / optimistic / auth functions."""

from pyconvex import ConvexError, internal_query, mutation, query, v


@query(args={"author": v.optional(v.string())})
async def list(ctx, author=None):
    q = ctx.db.query("messages")
    if author is not None:
        q = q.with_index("by_author", lambda r: r.eq("author", author))
    return await q.collect()


@query(args={"author": v.string()}, returns=v.float64())
async def count(ctx, author):
    docs = (
        await ctx.db.query("messages")
        .with_index("by_author", lambda r: r.eq("author", author))
        .collect()
    )
    return float(len(docs))


@mutation(args={"author": v.string(), "body": v.string()}, returns=v.id("messages"))
async def send(ctx, author, body):
    if not body:
        raise ConvexError({"code": "EMPTY_BODY"})
    return await ctx.db.insert("messages", {"author": author, "body": body})


@query(args={})
async def whoami(ctx):
    identity = await ctx.auth.get_user_identity()
    return None if identity is None else {"subject": identity.subject, "name": identity.name}


@internal_query(args={})
async def secret(ctx):
    return "internal ok"

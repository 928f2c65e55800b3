from pyconvex import ConvexError, mutation, query, v


@query(args={"channel": v.id("channels"), "limit": v.optional(v.float64())})
async def list(ctx, channel, limit=None):
    return await (ctx.db.query("messages")
                  .with_index("by_channel", lambda q: q.eq("channel", channel))
                  .order("desc")
                  .take(int(limit or 50)))


@mutation(args={"channel": v.id("channels"), "author": v.string(), "body": v.string()})
async def send(ctx, channel, author, body):
    if not body.strip():
        raise ConvexError({"code": "EMPTY_BODY"})
    return await ctx.db.insert("messages", {"channel": channel, "author": author,
                                            "body": body, "reactions": []})


@mutation(args={"message": v.id("messages"), "user": v.string(), "emoji": v.string()})
async def react(ctx, message, user, emoji):
    msg = await ctx.db.get(message)
    if msg is None:
        raise ConvexError({"code": "NOT_FOUND"})
    await ctx.db.patch(message, {"reactions": [*msg["reactions"], {"user": user, "emoji": emoji}]})

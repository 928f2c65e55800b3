"""Functions bench/realtime_bench.py drives over the WebSocket sync protocol."""

from pyconvex import mutation, query, v


@mutation(args={"seq": v.float64(), "body": v.string()})
async def write(ctx, seq, body):
    """A plain insert: the mutation-latency and throughput workloads."""
    return await ctx.db.insert("writes", {"seq": seq, "body": body})


@query(args={})
async def latest(ctx):
    """The newest counter document: the one query every fan-out subscriber shares."""
    return await ctx.db.query("counter").order("desc").first()


@mutation(args={"seq": v.float64()})
async def bump(ctx, seq):
    return await ctx.db.insert("counter", {"seq": seq})


@query(args={"key": v.string()})
async def by_key(ctx, key):
    """One distinct query per key: the distinct-subscriptions workload."""
    return await ctx.db.query("docs").with_index("by_key", lambda q: q.eq("key", key)).collect()


@mutation(args={"key": v.string(), "seq": v.float64()})
async def put_key(ctx, key, seq):
    return await ctx.db.insert("docs", {"key": key, "seq": seq})


@query(args={})
async def latest100(ctx):
    """A chat-style list: the newest 100 messages (the list fan-out workload)."""
    return await ctx.db.query("feed").order("desc").take(100)


@mutation(args={"seq": v.float64(), "author": v.string(), "body": v.string()})
async def post(ctx, seq, author, body):
    return await ctx.db.insert("feed", {"seq": seq, "author": author, "body": body})

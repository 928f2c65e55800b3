"""A tiny chat project the subscription tests share: messages by channel, listed, the latest,
and sent."""

SCHEMA = """
from pyconvex import define_schema, define_table, v

schema = define_schema({
    "messages": define_table({"channel": v.string(), "body": v.string()})
        .index("by_channel", ["channel"]),
})
"""

MESSAGES = """
from pyconvex import mutation, query, v

@query(args={"channel": v.string()})
async def list(ctx, channel):
    docs = await ctx.db.query("messages").with_index(
        "by_channel", lambda q: q.eq("channel", channel)).collect()
    return [d["body"] for d in docs]

@query(args={"channel": v.string()})
async def latest(ctx, channel):
    doc = await ctx.db.query("messages").with_index(
        "by_channel", lambda q: q.eq("channel", channel)).order("desc").first()
    return None if doc is None else doc["body"]

@mutation(args={"channel": v.string(), "body": v.string()})
async def send(ctx, channel, body):
    return await ctx.db.insert("messages", {"channel": channel, "body": body})
"""

FILES = {"schema.py": SCHEMA, "messages.py": MESSAGES}

"""Functions the browser tests call (tests/clients/test_browser_*.py)."""

from pyconvex import mutation, query, v


@query(args={})
async def list(ctx):
    return await ctx.db.query("messages").order("desc").take(100)


@mutation(args={"author": v.string(), "body": v.string()})
async def send(ctx, author, body):
    return await ctx.db.insert("messages", {"author": author, "body": body})


@mutation(args={"text": v.string()})
async def shout(ctx, text):
    print(f"shouting {text}")
    return text.upper()


@query(args={})
async def whoami(ctx):
    identity = await ctx.auth.get_user_identity()
    return None if identity is None else identity.name

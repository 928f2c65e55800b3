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


@mutation(args={"body": v.string()})
async def later(ctx, body):
    """Schedules a send an hour from now (the dashboard cancels it)."""
    return await ctx.scheduler.run_after(3600, "messages:send", {"author": "later", "body": body})


@mutation(args={})
async def upload_url(ctx):
    return await ctx.storage.generate_upload_url()

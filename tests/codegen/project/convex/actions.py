"""An action calling functions through the generated references."""

from typing import Literal

from pyconvex import Id

from ._generated.api import api, internal
from ._generated.server import ActionCtx, action


@action
async def post_twice(ctx: ActionCtx, channel: Id[Literal["channels"]], body: str) -> int:
    for _ in range(2):
        await ctx.run_mutation(
            api.messages.send, {"channel": channel, "author": "bot", "body": body}
        )
    await ctx.run_mutation(internal.admin.audit.record, {"what": "post_twice"})
    latest = await ctx.run_query(api.messages.list, {"channel": channel, "limit": 1})
    assert latest[0]["body"] == body
    # A result arrives as Convex sends it: an int as a float (a float64 on the wire).
    return int(await ctx.run_query(api.messages.count))


@action
async def archive(ctx: ActionCtx, channel: Id[Literal["channels"]]) -> str | None:
    """Files and the scheduler through the typed ctx."""
    storage_id = await ctx.storage.store(b"archived", content_type="text/plain")
    meta = await ctx.storage.get_metadata(storage_id)
    assert meta is None or meta["size"] >= 0
    job = await ctx.scheduler.run_after(0, internal.admin.audit.record, {"what": "archive"})
    await ctx.scheduler.cancel(job)
    await ctx.scheduler.run_at(
        0, api.messages.send, {"channel": channel, "author": "a", "body": "b"}
    )
    total: int = await ctx.run_blocking(sum, [1, 2])
    assert total == 3
    return await ctx.storage.get_url(storage_id)

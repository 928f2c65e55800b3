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
    return await ctx.run_query(api.messages.count)

"""Messages of a channel: typed with the generated modules."""

import builtins
from typing import Any, Literal

from pyconvex import ConvexError, Id, v
from pyconvex.server.db import PaginationOptions

from ._generated.data_model import MessagesDoc, MessagesFields
from ._generated.server import MutationCtx, QueryCtx, mutation, query


@query(args={"channel": v.id("channels"), "limit": v.optional(v.float64())})
async def list(
    ctx: QueryCtx, channel: Id[Literal["channels"]], limit: float | None = None
) -> builtins.list[MessagesDoc]:
    return await (
        ctx.db.query("messages")
        .with_index("by_channel", lambda q: q.eq("channel", channel))
        .order("desc")
        .take(int(limit or 50))
    )


@query
async def count(ctx: QueryCtx) -> int:
    n = 0
    async for message in ctx.db.query("messages"):
        n += message["status"] == "sent"
    return n


@query
async def page(
    ctx: QueryCtx, channel: Id[Literal["channels"]], pagination_opts: PaginationOptions
) -> Any:
    result = await (
        ctx.db.query("messages")
        .with_index("by_channel", lambda q: q.eq("channel", channel))
        .filter(lambda q: q.neq(q.field("status"), "deleted"))
        .paginate(pagination_opts)
    )
    return {**result, "page": [m["body"] for m in result["page"]]}


@mutation(args={"channel": v.id("channels"), "author": v.string(), "body": v.string()})
async def send(
    ctx: MutationCtx, channel: Id[Literal["channels"]], author: str, body: str
) -> Id[Literal["messages"]]:
    if not body.strip():
        raise ConvexError({"code": "EMPTY_BODY"})
    doc: MessagesFields = {
        "channel": channel,
        "author": author,
        "body": body,
        "reactions": [],
        "status": "sent",
    }
    return await ctx.db.insert("messages", doc)


@mutation
async def edit(ctx: MutationCtx, id: Id[Literal["messages"]], body: str) -> None:
    message = await ctx.db.get(id)
    if message is None:
        raise ConvexError({"code": "NOT_FOUND"})
    await ctx.db.patch(id, {"body": body, "edited_at": message["_creationTime"] + 1})


@mutation
async def remove(ctx: MutationCtx, id: Id[Literal["messages"]]) -> None:
    await ctx.db.delete(id)

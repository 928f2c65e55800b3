"""Channels: find or create by name."""

from typing import Literal

from pyconvex import Id

from ._generated.data_model import ChannelsDoc
from ._generated.server import MutationCtx, QueryCtx, mutation, query


async def _by_name(ctx: QueryCtx, name: str) -> ChannelsDoc | None:
    """A helper taking a query ctx: mutations pass theirs (a MutationCtx is a QueryCtx)."""
    by_name = ctx.db.query("channels").with_index("by_name", lambda q: q.eq("name", name))
    return await by_name.unique()


@mutation
async def create(ctx: MutationCtx, name: str) -> Id[Literal["channels"]]:
    existing = await _by_name(ctx, name)
    if existing is not None:
        return existing["_id"]
    return await ctx.db.insert("channels", {"name": name})


@query
async def find(ctx: QueryCtx, name: str) -> ChannelsDoc | None:
    return await ctx.db.query("channels").filter(lambda q: q.eq(q.field("name"), name)).first()


@query
async def lookup(ctx: QueryCtx, id: str) -> ChannelsDoc | None:
    channel_id = ctx.db.normalize_id("channels", id)
    return None if channel_id is None else await ctx.db.get(channel_id)


@query
async def whoami(ctx: QueryCtx) -> str | None:
    identity = await ctx.auth.get_user_identity()
    return None if identity is None else identity.subject

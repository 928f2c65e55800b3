"""Internal functions: callable from other functions, never by clients."""

from pyconvex import v

from .._generated.server import MutationCtx, internal_mutation


@internal_mutation(args={"what": v.string()})
async def record(ctx: MutationCtx, what: str) -> None:
    await ctx.db.insert("audit_log", {"what": what})

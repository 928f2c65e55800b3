"""``pagination_opts_validator``: the validator for Convex's ``paginationOpts`` argument."""

from __future__ import annotations

from pyconvex.values.validators import v

pagination_opts_validator = v.object(
    {
        "numItems": v.float64(),
        "cursor": v.union(v.string(), v.null()),
        "endCursor": v.optional(v.union(v.string(), v.null())),
        "id": v.optional(v.float64()),
        "maximumRowsRead": v.optional(v.float64()),
        "maximumBytesRead": v.optional(v.float64()),
    }
)
"""Validates ``{"numItems": n, "cursor": str | None, ...}`` exactly as Convex's does::

    @query(args={"paginationOpts": pagination_opts_validator})
    async def list(ctx, paginationOpts):
        return await ctx.db.query("messages").paginate(paginationOpts)
"""

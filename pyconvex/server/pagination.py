"""Validators of Convex's pagination: ``paginationOpts`` in, a page of results out."""

from __future__ import annotations

from pyconvex.values.compound_validators import ObjectValidator
from pyconvex.values.validator import Validator
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


def pagination_result_validator(item: Validator) -> ObjectValidator:
    """The validator of a page whose items match ``item`` (Convex's
    ``paginationResultValidator``)::

        @query(args={"paginationOpts": pagination_opts_validator},
               returns=pagination_result_validator(v.object({...})))
        async def list(ctx, paginationOpts):
            return await ctx.db.query("messages").paginate(paginationOpts)
    """
    return v.object(
        {
            "page": v.array(item),
            "continueCursor": v.string(),
            "isDone": v.boolean(),
            "splitCursor": v.optional(v.union(v.string(), v.null())),
            "pageStatus": v.optional(
                v.union(v.literal("SplitRecommended"), v.literal("SplitRequired"), v.null())
            ),
        }
    )

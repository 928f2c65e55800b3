"""Counters in slots: bump_all changes every slot in one transaction."""

from pyconvex import mutation, query, v


@query(args={"slot": v.float64()})
async def get(ctx, slot):
    doc = await ctx.db.query("counters").with_index("by_slot", lambda r: r.eq("slot", slot)).first()
    return 0.0 if doc is None else doc["n"]


@mutation(args={"slots": v.float64()})
async def bump_all(ctx, slots):
    for i in range(int(slots)):
        slot = float(i)
        doc = await (
            ctx.db.query("counters")
            .with_index("by_slot", lambda r, s=slot: r.eq("slot", s))
            .first()
        )
        if doc is None:
            await ctx.db.insert("counters", {"slot": slot, "n": 1.0})
        else:
            await ctx.db.patch(doc["_id"], {"n": doc["n"] + 1})

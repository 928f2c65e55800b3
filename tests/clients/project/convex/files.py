"""File storage through Convex's upload flow: a URL from a mutation, the bytes POSTed to it."""

from pyconvex import action, mutation, query, v


@mutation
async def upload_url(ctx):
    return await ctx.storage.generate_upload_url()


@mutation(args={"storage_id": v.id("_storage"), "name": v.string()})
async def save(ctx, storage_id, name):
    return await ctx.db.insert("files", {"storage_id": storage_id, "name": name})


@query(args={"name": v.string()})
async def by_name(ctx, name):
    """The file saved under ``name`` with its URL and metadata (None until it is saved)."""
    doc = await ctx.db.query("files").filter(lambda q: q.eq(q.field("name"), name)).first()
    if doc is None:
        return None
    meta = await ctx.db.system.get(doc["storage_id"])
    return {
        "url": await ctx.storage.get_url(doc["storage_id"]),
        "sha256": meta["sha256"],
        "size": meta["size"],
        "contentType": meta.get("contentType"),
    }


@action(args={"text": v.string()})
async def store_text(ctx, text):
    """An action storing a file itself; returns its id and URL."""
    storage_id = await ctx.storage.store(text.encode(), content_type="text/plain")
    return {"id": storage_id, "url": await ctx.storage.get_url(storage_id)}

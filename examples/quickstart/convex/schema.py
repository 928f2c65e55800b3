from pyconvex import define_schema, define_table, v

schema = define_schema({
    "channels": define_table({"name": v.string()}).index("by_name", ["name"]),
    "messages": define_table({
        "channel": v.id("channels"),
        "author": v.string(),
        "body": v.string(),
        "reactions": v.array(v.object({"user": v.string(), "emoji": v.string()})),
        "edited_at": v.optional(v.float64()),
    })
    .index("by_channel", ["channel"])
    .search_index("search_body", search_field="body", filter_fields=["channel"]),
})

from pyconvex import define_schema, define_table, v

schema = define_schema(
    {
        "channels": define_table({"name": v.string()}).index("by_name", ["name"]),
        "messages": define_table(
            {
                "channel": v.id("channels"),
                "author": v.string(),
                "body": v.string(),
                "reactions": v.array(v.object({"user": v.string(), "emoji": v.string()})),
                "edited_at": v.optional(v.float64()),
                "status": v.union(v.literal("sent"), v.literal("deleted")),
            }
        )
        .index("by_channel", ["channel"])
        .search_index("search_body", search_field="body", filter_fields=["channel"]),
        "events": define_table(
            v.union(
                v.object({"kind": v.literal("join"), "user": v.string()}),
                v.object(
                    {
                        "kind": v.literal("leave"),
                        "user": v.string(),
                        "reason": v.optional(v.string()),
                    }
                ),
            )
        ),
        "settings": define_table(
            {
                "theme-name": v.string(),
                "counters": v.record(v.string(), v.int64()),
                "avatar": v.optional(v.bytes()),
                "parent": v.union(v.id("settings"), v.null()),
                "extra": v.any(),
            }
        ),
        "audit_log": define_table(v.any()),
    }
)

from pyconvex import define_schema, define_table, v

schema = define_schema(
    {
        "messages": define_table({"author": v.string(), "body": v.string()}).index(
            "by_author", ["author"]
        ),
        "notes": define_table({"text": v.string(), "stars": v.optional(v.int64())}),
    }
)

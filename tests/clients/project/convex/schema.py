from pyconvex import define_schema, define_table, v

schema = define_schema(
    {
        "messages": define_table({"author": v.string(), "body": v.string()}).index(
            "by_author", ["author"]
        ),
        "items": define_table({"n": v.float64(), "tag": v.string()}).index(
            "by_tag_n", ["tag", "n"]
        ),
        "files": define_table({"storage_id": v.id("_storage"), "name": v.string()}),
    }
)

from pyconvex import define_schema, define_table, v

schema = define_schema(
    {
        "writes": define_table({"seq": v.float64(), "body": v.string()}),
        "counter": define_table({"seq": v.float64()}),
        "docs": define_table({"key": v.string(), "seq": v.float64()}).index("by_key", ["key"]),
        "feed": define_table({"seq": v.float64(), "author": v.string(), "body": v.string()}),
    }
)

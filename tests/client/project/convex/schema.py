from pyconvex import define_schema, define_table, v

schema = define_schema(
    {
        "messages": define_table({"author": v.string(), "body": v.string()}).index(
            "by_author", ["author"]
        ),
        "counters": define_table({"slot": v.float64(), "n": v.float64()}).index(
            "by_slot", ["slot"]
        ),
        "items": define_table({"tag": v.string(), "n": v.float64()}).index(
            "by_tag_n", ["tag", "n"]
        ),
        "values": define_table({"key": v.string(), "value": v.any()}).index("by_key", ["key"]),
    }
)

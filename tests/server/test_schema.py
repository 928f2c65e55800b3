"""define_schema / define_table: indexes (compound, nested paths), search indexes,
schema_validation, JSON form, and the errors for invalid definitions."""

from __future__ import annotations

from typing import Any

import pytest

from pyconvex import SchemaDefinition, TableDefinition, define_schema, define_table, v
from pyconvex.errors import SchemaError


def messages() -> TableDefinition:
    return define_table(
        {
            "channel": v.id("channels"),
            "body": v.string(),
            "settings": v.object({"visibility": v.string()}),
        }
    )


def test_define_table_from_dict_or_validator() -> None:
    t = define_table({"name": v.string()})
    assert t.document.kind == "object" and t.indexes == [] and t.search_indexes == []
    obj = v.object({"name": v.string()})
    assert define_table(obj).document is obj
    assert define_table(v.any()).document.kind == "any"
    union = v.union(v.object({"a": v.string()}), v.object({"b": v.string()}))
    assert define_table(union).document is union


def test_indexes_compound_and_nested() -> None:
    t = (
        messages()
        .index("by_channel", ["channel"])
        .index("by_channel_body", ("channel", "body"))
        .index("by_visibility", ["settings.visibility"])
    )
    assert [(i.name, i.fields) for i in t.indexes] == [
        ("by_channel", ("channel",)),
        ("by_channel_body", ("channel", "body")),
        ("by_visibility", ("settings.visibility",)),
    ]


def test_search_index_is_declared() -> None:
    t = messages().search_index("search_body", search_field="body", filter_fields=["channel"])
    (s,) = t.search_indexes
    assert (s.name, s.search_field, s.filter_fields) == ("search_body", "body", ("channel",))


def test_schema_json() -> None:
    schema = define_schema(
        {
            "messages": messages()
            .index("by_channel", ["channel"])
            .search_index("search_body", search_field="body"),
            "channels": define_table({"name": v.string()}),
        }
    )
    j = schema.to_json()
    assert j["schemaValidation"] is True
    assert [t["tableName"] for t in j["tables"]] == ["channels", "messages"]
    msgs = j["tables"][1]
    assert msgs["indexes"] == [{"indexDescriptor": "by_channel", "fields": ["channel"]}]
    assert msgs["searchIndexes"] == [
        {"indexDescriptor": "search_body", "searchField": "body", "filterFields": []}
    ]
    assert msgs["documentType"]["type"] == "object"
    assert msgs["documentType"]["value"]["channel"]["fieldType"] == {
        "type": "id",
        "tableName": "channels",
    }


def test_schema_validation_flag() -> None:
    s = define_schema({"t": define_table({"a": v.string()})}, schema_validation=False)
    assert isinstance(s, SchemaDefinition)
    assert s.schema_validation is False and s.to_json()["schemaValidation"] is False


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (lambda: messages().index("by_id", ["body"]), "reserved"),
        (lambda: messages().index("by_creation_time", ["body"]), "reserved"),
        (lambda: messages().index("x", ["body"]).index("x", ["channel"]), "defined twice"),
        (
            lambda: messages().index("x", ["body"]).search_index("x", search_field="body"),
            "defined twice",
        ),
        (lambda: messages().index("1bad", ["body"]), "invalid"),
        (lambda: messages().index("by_body", "body"), "must be a list"),
        (lambda: messages().index("by_body", []), "at least one field"),
        (lambda: messages().index("by_body", ["body", "body"]), "lists a field twice"),
        (lambda: messages().index("by_ct", ["_creationTime"]), "implicitly"),
        (lambda: messages().index("by_x", ["_id"]), "implicitly"),
        (lambda: messages().index("by_x", ["settings..visibility"]), "not a valid field path"),
        (lambda: messages().search_index("s", search_field="a b"), "not a valid field path"),
        (lambda: define_table({"_secret": v.string()}), "reserved for system fields"),
        (lambda: define_table(v.string()), "must be v.object"),
        (lambda: define_table(["a"]), "takes a dict of validators"),
        (lambda: define_schema({"_storage": messages()}), "system tables"),
        (lambda: define_schema({"bad name": messages()}), "invalid"),
        (lambda: define_schema({"t": {"a": v.string()}}), "expected define_table"),
    ],
)
def test_invalid_definitions(build: Any, expected: str) -> None:
    with pytest.raises(SchemaError, match=expected):
        build()


def test_error_messages_name_the_thing() -> None:
    with pytest.raises(SchemaError) as e:
        messages().index("by_body", "body")
    assert "'by_body'" in str(e.value) and "['body']" in str(e.value)
    with pytest.raises(SchemaError) as e:
        define_schema({"bad name": messages()})
    assert "'bad name'" in str(e.value)

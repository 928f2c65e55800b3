"""Validation errors and ConvexError messages read exactly as Convex writes them.

The expected texts follow the Convex backend's ``ValidationError`` display
(crates/common/src/schemas/validator.rs: the first line, ``Path: ...``, the value and the
validator in its Rust display) and convex-js's ``stringifyValueForError``. pyconvex's own
explanation follows Convex's text on the next line.
"""

from __future__ import annotations

import pytest

from pyconvex.errors import ValidationError
from pyconvex.values import Int64, Validator, v
from pyconvex.values.error_text import display_value, js_number, stringify_for_error

ID = "kg27rxfv99gzp01wmph0gvt92d6hnvy6"
MISSING_TAIL = "Consider wrapping the field validator in `v.optional(...)` if this is expected."


class Tables:
    def __init__(self, table: str) -> None:
        self.table = table

    def table_for_id(self, id_str: str) -> str | None:
        return self.table


def convex_text(validator: Validator, value: object, ids: object = None) -> str:
    with pytest.raises(ValidationError) as info:
        validator.validate(value, "", ids)  # type: ignore[arg-type]
    error = info.value
    assert str(error).startswith(error.convex + "\n") and error.detail
    return error.convex


def test_missing_required_field() -> None:
    shape = v.object({"name": v.string(), "age": v.float64()})
    assert convex_text(shape, {"age": 3}) == (
        f"Object is missing the required field `name`. {MISSING_TAIL}\n"
        "\n"
        "Object: {age: 3.0}\n"
        "Validator: v.object({age: v.float64(), name: v.string()})"
    )


def test_extra_field() -> None:
    assert convex_text(v.object({"name": v.string()}), {"name": "x", "extra": Int64(1)}) == (
        "Object contains extra field `extra` that is not in the validator.\n"
        "\n"
        'Object: {extra: 1, name: "x"}\n'
        "Validator: v.object({name: v.string()})"
    )


def test_no_match_with_the_path() -> None:
    shape = v.object({"reactions": v.array(v.object({"emoji": v.string()}))})
    value = {"reactions": [{"emoji": "x"}, {"emoji": 3.0}]}
    assert convex_text(shape, value) == (
        "Value does not match validator.\n"
        "Path: .reactions[1].emoji\n"
        "Value: 3.0\n"
        "Validator: v.string()"
    )


def test_the_first_field_in_name_order_is_reported_and_extras_last() -> None:
    shape = v.object({"b": v.string(), "a": v.string()})
    assert convex_text(shape, {"zz": 1.0, "b": "x", "a": 1.0}).startswith(
        "Value does not match validator.\nPath: .a\n"
    )
    assert convex_text(shape, {"zz": 1.0, "a": "x"}).startswith(
        "Object is missing the required field `b`."
    )
    assert convex_text(shape, {"zz": 1.0, "y": 1.0, "a": "x", "b": "y"}).startswith(
        "Object contains extra field `y`"
    )


def test_a_union_reports_itself() -> None:
    shape = v.union(v.object({"kind": v.literal("a"), "n": v.float64()}), v.null())
    with pytest.raises(ValidationError) as info:
        shape.validate({"kind": "a", "n": "x"})
    assert info.value.convex == (
        "Value does not match validator.\n"
        "\n"
        'Value: {kind: "a", n: "x"}\n'
        'Validator: v.union(v.object({kind: v.literal("a"), n: v.float64()}), v.null())'
    )
    # pyconvex still explains which part of the closest member is wrong.
    assert info.value.detail == "Value at .n must be v.float64(), got string 'x'"


def test_literal() -> None:
    assert (
        convex_text(v.literal("a"), "b")
        == '`"b"` does not match literal validator `v.literal("a")`.'
    )
    assert convex_text(v.object({"s": v.literal(1.0)}), {"s": True}) == (
        "`true` does not match literal validator `v.literal(1.0)`.Path: .s"
    )
    assert convex_text(v.literal(Int64(2)), Int64(1)).endswith("`v.literal(<bigint>)`.")


def test_record_paths_are_keys_and_values() -> None:
    assert convex_text(v.record(v.string(), v.float64()), {"a": "x"}) == (
        'Value does not match validator.\nPath: .values()\nValue: "x"\nValidator: v.float64()'
    )
    text = convex_text(v.record(v.id("users"), v.float64()), {"bob": 1.0}, Tables("users"))
    assert text == (
        'Value does not match validator.\nPath: .keys()\nValue: "bob"\nValidator: v.id("users")'
    )


def test_ids_of_another_table() -> None:
    shape = v.object({"author": v.id("users")})
    assert convex_text(shape, {"author": ID}, Tables("messages")) == (
        f'Found ID "{ID}" from table `messages`, which does not match the table name in '
        'validator `v.id("users")`.Path: .author'
    )
    assert convex_text(shape, {"author": ID}, Tables("_storage")) == (
        f'Found ID "{ID}" from a system table, which does not match the table name in '
        'validator `v.id("users")`.Path: .author'
    )
    assert convex_text(shape, {"author": "nope"}).startswith("Value does not match validator.")


def test_values_and_validators_as_the_backend_displays_them() -> None:
    value = {"b": [1.0, 0.5, 1e21, 2.5e-7, float("nan")], "a": b"\x00\x01", "c": 'q"\n', "d": None}
    assert display_value(value) == (
        '{a: b"AAE=", b: [1.0, 0.5, 1e21, 2.5e-7, NaN], c: "q\\"\\n", d: null}'
    )
    shape = v.object(
        {
            "z": v.optional(v.union(v.string(), v.null())),
            "a": v.record(v.string(), v.array(v.int64())),
            "m": v.bytes(),
            "b": v.any(),
            "lit": v.literal(True),
        }
    )
    assert shape.display() == (
        "v.object({a: v.record(v.string(), v.array(v.int64())), b: v.any(), "
        "lit: v.literal(true), m: v.bytes(), z: v.optional(v.union(v.string(), v.null()))})"
    )


def test_convex_error_messages_are_compact_json() -> None:
    data = {"code": "BAD", "n": 100.0, "big": Int64(7), "f": 0.5, "list": [1.0, None, True]}
    assert stringify_for_error(data) == (
        '{"code":"BAD","n":100,"big":"7n","f":0.5,"list":[1,null,true]}'
    )
    assert stringify_for_error("x") == '"x"'
    assert stringify_for_error({"é": "ü"}) == '{"é":"ü"}'
    assert len(stringify_for_error("x" * 20_000)) == 16384
    assert stringify_for_error("x" * 20_000).endswith("[...truncated]")


@pytest.mark.parametrize(
    ("number", "text"),
    [(100.0, "100"), (-1.5, "-1.5"), (1e21, "1e+21"), (1e20, "100000000000000000000"),
     (1e-7, "1e-7"), (1.5e-6, "0.0000015"), (0.1 + 0.2, "0.30000000000000004"),
     (2.0**53, "9007199254740992"), (5e-324, "5e-324"), (float("inf"), "null")],
)  # fmt: skip
def test_numbers_print_as_javascript_prints_them(number: float, text: str) -> None:
    assert js_number(number) == text

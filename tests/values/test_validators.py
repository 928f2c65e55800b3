"""Tests for pyconvex.values.validators: v, normalization, error messages, JSON and repr."""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Any

import pytest

from pyconvex.errors import ValidationError
from pyconvex.values import (
    UNSET,
    Int64,
    IntValidator,
    ObjectValidator,
    Validator,
    new_id,
    v,
)

ID = "kg27rxfv99gzp01wmph0gvt92d6hnvy6"


class Tables:
    """An IdResolver where table number 540 is "messages"."""

    def table_for_id(self, id_str: str) -> str | None:
        return "messages" if id_str == ID else "users"


def _message(validator: Validator, value: object, path: str = "") -> str:
    """pyconvex's explanation: the part after Convex's own text."""
    with pytest.raises(ValidationError) as info:
        validator.validate(value, path)
    error = info.value
    assert str(error) == f"{error.convex}\n{error.detail}"
    return error.detail


# --- accepted values and normalization -------------------------------------------------------


def test_scalars_accept_and_normalize() -> None:
    assert v.string().validate("x") == "x"
    assert v.float64().validate(1.5) == 1.5
    result = v.float64().validate(3)
    assert result == 3.0 and type(result) is float
    assert math.isnan(v.number().validate(math.nan))  # type: ignore[arg-type]
    n = v.int64().validate(7)
    assert n == 7 and type(n) is Int64
    assert type(v.bigint().validate(Int64(-1))) is Int64
    assert v.boolean().validate(False) is False
    assert v.null().validate(None) is None
    assert v.bytes().validate(memoryview(b"ab")) == b"ab"
    assert v.any().validate({"a": (1, 2)}) == {"a": [1.0, 2.0]}


def test_str_enum_becomes_plain_str() -> None:
    class Mood(StrEnum):
        HAPPY = "happy"

    result = v.string().validate(Mood.HAPPY)
    assert result == "happy" and type(result) is str
    assert v.literal("happy").validate(Mood.HAPPY) == "happy"


def test_int_validator_hands_over_python_int() -> None:
    result = IntValidator().validate(3.0)
    assert result == 3 and type(result) is int
    assert IntValidator().validate(-4) == -4
    assert repr(IntValidator()) == "int"
    assert IntValidator().kind == "float64"


def test_object_drops_unset_optional_fields_and_normalizes() -> None:
    shape = v.object({"n": v.float64(), "note": v.optional(v.string())})
    assert shape.validate({"n": 1, "note": UNSET}) == {"n": 1.0}
    assert shape.validate({"n": 1}) == {"n": 1.0}
    assert shape.validate({"n": 1, "note": "x"}) == {"n": 1.0, "note": "x"}


def test_object_kwargs_and_dict_forms() -> None:
    assert v.object(a=v.string()) == v.object({"a": v.string()})
    assert v.object({"class": v.string()}, fields=v.float64()).fields.keys() == {"class", "fields"}
    assert v.object().validate({}) == {}


def test_record_union_literal_array() -> None:
    assert v.record(v.string(), v.float64()).validate({"a": 1}) == {"a": 1.0}
    assert v.union(v.string(), v.null()).validate(None) is None
    assert v.union(v.float64(), v.string()).validate(2) == 2.0
    assert v.literal(3).validate(3) == 3.0
    assert v.literal(Int64(3)).validate(Int64(3)) == Int64(3)
    assert v.literal(True).validate(True) is True
    assert v.array(v.int64()).validate((1, 2)) == [Int64(1), Int64(2)]


def test_id_validator_with_and_without_resolver() -> None:
    assert v.id("messages").validate(ID) == ID
    assert v.id("messages").validate(ID, ids=Tables()) == ID
    other = new_id(3)
    assert v.id("messages").validate(other) == other  # no resolver: any valid ID


# --- error messages (pinned) ----------------------------------------------------------------

REACTIONS = v.object({"reactions": v.array(v.object({"user": v.string(), "emoji": v.string()}))})


def test_nested_path_in_message() -> None:
    value = {"reactions": [{"user": "a", "emoji": "x"}] * 2 + [{"user": "b", "emoji": 3.0}]}
    with pytest.raises(ValidationError) as info:
        REACTIONS.validate(value)
    assert str(info.value) == (
        "Value does not match validator.\n"
        "Path: .reactions[2].emoji\n"
        "Value: 3.0\n"
        "Validator: v.string()\n"
        "Value at .reactions[2].emoji must be v.string(), got float64 3.0"
    )
    assert info.value.path == ".reactions[2].emoji"


def test_root_path_prefix() -> None:
    with pytest.raises(ValidationError) as info:
        v.object({"n": v.float64()}).validate({"n": "x"}, ".args")
    # Convex's path is inside the value; pyconvex's explanation starts at the root given.
    assert info.value.convex.startswith("Value does not match validator.\nPath: .n\n")
    assert info.value.detail == "Value at .args.n must be v.float64(), got string 'x'"
    assert info.value.path == ".args.n"


@pytest.mark.parametrize(
    ("validator", "value", "message"),
    [
        (v.string(), 3.0, "Value must be v.string(), got float64 3.0"),
        (v.string(), None, "Value must be v.string(), got null"),
        (v.float64(), "1", "Value must be v.float64(), got string '1'"),
        (v.float64(), True, "Value must be v.float64(), got boolean True"),
        (
            v.float64(),
            Int64(1),
            "Value must be v.float64(), got int64 1 (that is an int64: a BigInt such as 5n in "
            "JavaScript, Int64(5) in Python; pass a plain number instead)",
        ),
        (v.float64(), 2**60, "Value must be v.float64(), got int 1152921504606846976"),
        (
            v.int64(),
            1.0,
            "Value must be v.int64(), got float64 1.0 (a plain number is a float64; an int64 is "
            'Int64(n) in Python, n as a BigInt (5n) in JavaScript, {"$integer": ...} in JSON — or '
            "declare v.float64())",
        ),
        (v.int64(), True, "Value must be v.int64(), got boolean True"),
        (
            v.int64(),
            2**63,
            "Value must be v.int64(), got 9223372036854775808, which is outside -2**63 .. 2**63-1",
        ),
        (v.boolean(), 1.0, "Value must be v.boolean(), got float64 1.0"),
        (v.null(), UNSET, "Value must be v.null(), got undefined (missing)"),
        (v.bytes(), "x", "Value must be v.bytes(), got string 'x'"),
        (v.id("messages"), 5.0, 'Value must be v.id("messages"), got float64 5.0'),
        (
            v.id("messages"),
            "abc",
            "Value must be v.id(\"messages\"), got string 'abc', which is not a document ID",
        ),
        (v.literal("a"), "b", "Value must be v.literal(\"a\"), got string 'b'"),
        (v.literal(1.0), True, "Value must be v.literal(1.0), got boolean True"),
        (v.literal(True), 1.0, "Value must be v.literal(True), got float64 1.0"),
        (v.literal(Int64(1)), 1.0, "Value must be v.literal(Int64(1)), got float64 1.0"),
        (v.array(v.string()), "ab", "Value must be v.array(v.string()), got string 'ab'"),
        (v.array(v.string()), ["a", 1.0], "Value at [1] must be v.string(), got float64 1.0"),
        (
            v.object({"a": v.string()}),
            [],
            'Value must be v.object({"a": v.string()}), got array []',
        ),
        (
            v.object({"user": v.string(), "emoji": v.string()}),
            {"user": "a"},
            'Object is missing the required field "emoji" (v.string())',
        ),
        (
            v.object({"user": v.string(), "emoji": v.string()}),
            {"user": "a", "emoji": UNSET},
            'Object is missing the required field "emoji" (v.string())',
        ),
        (
            v.object({"user": v.string(), "emoji": v.string()}),
            {"user": "a", "emoji": "x", "emojii": "y"},
            'Object has an unexpected field "emojii" (allowed fields: "user", "emoji")',
        ),
        (v.object({}), {"x": 1.0}, 'Object has an unexpected field "x" (it allows no fields)'),
        (
            v.record(v.string(), v.float64()),
            {"a": "x"},
            "Value at .a must be v.float64(), got string 'x'",
        ),
        (
            v.record(v.id("users"), v.float64()),
            {"bob": 1.0},
            'Field name "bob" of the record must be v.id("users")',
        ),
        (
            v.record(v.string(), v.float64()),
            {"$a": 1.0},
            'Object has an invalid field name: Field name "$a" must not start with "$"',
        ),
        (
            v.union(v.string(), v.null()),
            1.0,
            "Value must be v.union(v.string(), v.null()), got float64 1.0",
        ),
        (
            v.union(v.object({"kind": v.literal("a"), "n": v.float64()}), v.null()),
            {"kind": "a", "n": "x"},
            "Value at .n must be v.float64(), got string 'x'",
        ),
        (
            v.any(),
            {"a": [{1}]},
            "Value at .a[0] is invalid: set {1} is not a Convex value (use a list)",
        ),
        (IntValidator(), 2.5, "Value must be int (a whole float64 number), got float64 2.5"),
        (IntValidator(), "3", "Value must be int (a whole float64 number), got string '3'"),
        (IntValidator(), math.inf, "Value must be int (a whole float64 number), got float64 inf"),
    ],
)
def test_error_messages(validator: Validator, value: object, message: str) -> None:
    assert _message(validator, value) == message


def test_convexs_text_of_an_int_parameter_names_its_whole_number_rule() -> None:
    """Convex's text shows the validator clients see (``v.float64()``), so that 1.5 failing
    it does not read as a contradiction, with the rule it failed."""
    with pytest.raises(ValidationError) as info:
        v.object({"limit": IntValidator()}).validate({"limit": 1.5})
    assert info.value.convex == (
        "Value does not match validator.\nPath: .limit\nValue: 1.5\n"
        "Validator: v.float64() (whole numbers only: an int parameter in Python)"
    )


def test_a_bigint_for_a_number_says_what_to_pass_in_either_language() -> None:
    message = _message(v.float64(), Int64(5))
    assert "a BigInt such as 5n in JavaScript, Int64(5) in Python" in message
    assert "pass a plain number instead" in message


def test_id_of_wrong_table_names_expected_table() -> None:
    with pytest.raises(ValidationError) as info:
        v.object({"author": v.id("users")}).validate({"author": ID}, ids=Tables())
    assert info.value.detail == (
        f'Value at .author must be v.id("users"), got an ID of table "messages": \'{ID}\''
    )


class NoTables:
    def table_for_id(self, id_str: str) -> str | None:
        return None


def test_id_of_unknown_table() -> None:
    with pytest.raises(ValidationError, match="got an ID of no known table"):
        v.id("users").validate(ID, "", NoTables())


def test_long_expected_form_is_shortened() -> None:
    big = v.object({f"field_{i}": v.string() for i in range(30)})
    text = _message(big, 1.0)
    assert text.endswith("...), got float64 1.0")
    assert len(text) < 220


# --- to_json (golden) -------------------------------------------------------------------------


def test_to_json_golden() -> None:
    schema = v.object(
        {
            "s": v.string(),
            "f": v.float64(),
            "n": v.number(),
            "i": v.int64(),
            "b": v.boolean(),
            "z": v.null(),
            "by": v.bytes(),
            "id": v.id("channels"),
            "ls": v.literal("draft"),
            "lf": v.literal(2.5),
            "li": v.literal(Int64(123)),
            "lb": v.literal(False),
            "arr": v.array(v.string()),
            "rec": v.record(v.string(), v.float64()),
            "u": v.union(v.string(), v.null()),
            "a": v.any(),
            "opt": v.optional(v.float64()),
            "int": IntValidator(),
        }
    )
    assert schema.to_json() == {
        "type": "object",
        "value": {
            "s": {"fieldType": {"type": "string"}, "optional": False},
            "f": {"fieldType": {"type": "number"}, "optional": False},
            "n": {"fieldType": {"type": "number"}, "optional": False},
            "i": {"fieldType": {"type": "bigint"}, "optional": False},
            "b": {"fieldType": {"type": "boolean"}, "optional": False},
            "z": {"fieldType": {"type": "null"}, "optional": False},
            "by": {"fieldType": {"type": "bytes"}, "optional": False},
            "id": {"fieldType": {"type": "id", "tableName": "channels"}, "optional": False},
            "ls": {"fieldType": {"type": "literal", "value": "draft"}, "optional": False},
            "lf": {"fieldType": {"type": "literal", "value": 2.5}, "optional": False},
            "li": {
                "fieldType": {"type": "literal", "value": {"$integer": "ewAAAAAAAAA="}},
                "optional": False,
            },
            "lb": {"fieldType": {"type": "literal", "value": False}, "optional": False},
            "arr": {"fieldType": {"type": "array", "value": {"type": "string"}}, "optional": False},
            "rec": {
                "fieldType": {
                    "type": "record",
                    "keys": {"type": "string"},
                    "values": {"fieldType": {"type": "number"}, "optional": False},
                },
                "optional": False,
            },
            "u": {
                "fieldType": {"type": "union", "value": [{"type": "string"}, {"type": "null"}]},
                "optional": False,
            },
            "a": {"fieldType": {"type": "any"}, "optional": False},
            "opt": {"fieldType": {"type": "number"}, "optional": True},
            "int": {"fieldType": {"type": "number"}, "optional": False},
        },
    }


def test_kinds() -> None:
    kinds = [
        v.string(), v.float64(), v.int64(), v.boolean(), v.null(), v.bytes(), v.id("t"),
        v.literal("a"), v.array(v.any()), v.object({}), v.record(v.string(), v.any()),
        v.union(v.null()), v.any(),
    ]  # fmt: skip
    assert [k.kind for k in kinds] == [
        "string", "float64", "int64", "boolean", "null", "bytes", "id", "literal", "array",
        "object", "record", "union", "any",
    ]  # fmt: skip


# --- repr, equality, construction errors ------------------------------------------------------


@pytest.mark.parametrize(
    ("validator", "source"),
    [
        (v.array(v.string()), "v.array(v.string())"),
        (v.optional(v.float64()), "v.optional(v.float64())"),
        (v.number(), "v.float64()"),
        (v.bigint(), "v.int64()"),
        (v.id("messages"), 'v.id("messages")'),
        (v.literal('say "hi"'), "v.literal('say \"hi\"')"),
        (v.literal(3), "v.literal(3.0)"),
        (v.record(v.string(), v.any()), "v.record(v.string(), v.any())"),
        (v.union(v.string(), v.null()), "v.union(v.string(), v.null())"),
        (
            v.object({"a": v.string(), "b": v.optional(v.bytes())}),
            'v.object({"a": v.string(), "b": v.optional(v.bytes())})',
        ),
        (v, "v"),
    ],
)
def test_repr_is_source_form(validator: object, source: str) -> None:
    assert repr(validator) == source


def test_structural_equality() -> None:
    assert v.object({"a": v.array(v.string())}) == v.object({"a": v.array(v.string())})
    assert v.object({"a": v.string()}) != v.object({"a": v.optional(v.string())})
    assert v.id("a") != v.id("b")
    assert v.literal(1.0) != v.literal(True)
    assert v.literal(Int64(1)) != v.literal(1.0)
    assert v.float64() == v.number()
    assert v.float64() != IntValidator()
    assert v.union(v.string(), v.null()) != v.union(v.null(), v.string())
    assert len({v.string(), v.string(), v.optional(v.string())}) == 2


def test_optional_flag() -> None:
    shape: ObjectValidator = v.object({"a": v.optional(v.string()), "b": v.string()})
    assert shape.fields["a"].is_optional is True
    assert shape.fields["b"].is_optional is False
    assert v.optional(v.optional(v.string())) == v.optional(v.string())
    inner = v.string()
    v.optional(inner)
    assert inner.is_optional is False  # v.optional copies


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: v.array("x"), "v.array(item) must be a validator such as v.string(), got 'x'"),
        (
            lambda: v.object({"$a": v.string()}),
            'v.object(): Field name "$a" must not start with "$"',
        ),
        (lambda: v.object({"a": str}), 'v.object() field "a" must be a validator'),
        (lambda: v.record(v.float64(), v.any()), "v.record() keys must be v.string(), v.id(...)"),
        (lambda: v.record(v.string(), v.optional(v.any())), "cannot be optional"),
        (lambda: v.literal(None), "v.literal(value) needs a str, float, int, Int64 or bool"),
        (lambda: v.id(""), "v.id(table) needs a table name string"),
    ],
)
def test_construction_errors(build: Any, message: str) -> None:
    with pytest.raises(TypeError) as info:
        build()
    assert message in str(info.value)


def test_record_keys_may_be_ids_and_string_literal_unions() -> None:
    v.record(v.id("users"), v.float64())
    keys = v.union(v.literal("a"), v.literal("b"))
    rec = v.record(keys, v.float64())
    assert rec.validate({"a": 1.0}) == {"a": 1.0}
    with pytest.raises(ValidationError, match='Field name "c" of the record must be'):
        rec.validate({"c": 1.0})

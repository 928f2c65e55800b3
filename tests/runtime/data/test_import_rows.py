"""An import's rows checked by chunk: the shortcuts (a type test for flat schemas, keys built
by column) give exactly what the validator and ``key_tail`` give, and a bad row is named."""

from __future__ import annotations

import math
from typing import Any

import pytest

from pyconvex import Int64, v
from pyconvex.errors import ValidationError
from pyconvex.runtime.data.import_files import ImportRefused, Source
from pyconvex.runtime.data.import_rows import RowChecker, creation_keys, plain_row_check
from pyconvex.runtime.store.index import IndexSpec, key_tail
from pyconvex.runtime.store.memory import BY_CREATION_TIME, Store
from pyconvex.values import UNSET
from pyconvex.values.ids import decode_id

FLAT = v.object(
    {
        "s": v.string(),
        "f": v.float64(),
        "b": v.boolean(),
        "n": v.null(),
        "i": v.int64(),
        "a": v.any(),
        "o": v.optional(v.bytes()),
    }
)
GOOD: dict[str, Any] = {"s": "x", "f": 1.5, "b": True, "n": None, "i": Int64(3), "a": "y"}
ROWS: list[dict[str, Any]] = [
    GOOD,
    {**GOOD, "o": b"\x00"},
    {**GOOD, "f": 2},  # an int: the validator converts it
    {**GOOD, "f": math.nan},
    {**GOOD, "a": [1.0]},  # the validator converts containers
    {**GOOD, "extra": 1.0},
    {k: x for k, x in GOOD.items() if k != "n"},  # a required null field missing
    {**{k: x for k, x in GOOD.items() if k != "n"}, "extra": None},
    {**GOOD, "o": UNSET},
    {**GOOD, "b": 1.0},
    {**GOOD, "i": 3},
    {**GOOD, "s": 1.0},
    {**GOOD, "o": "not bytes"},
    {"_id": "x", **GOOD},
]


@pytest.mark.parametrize("row", ROWS)
def test_the_type_test_passes_only_rows_the_validator_keeps_as_they_are(
    row: dict[str, Any],
) -> None:
    check = plain_row_check(FLAT)
    assert check is not None
    try:
        out: Any = FLAT.validate(dict(row))
        kept = list(out.items()) == list(row.items())
        kept = kept and all(type(out[k]) is type(x) for k, x in row.items())
    except ValidationError:
        kept = False
    if check(row):
        assert kept
    if any(row is r for r in ROWS[:2]):  # (not ==: True == 1.0)
        assert check(row)


def test_the_type_test_only_for_flat_objects() -> None:
    assert plain_row_check(None) is None
    assert plain_row_check(v.object({"t": v.array(v.string())})) is None
    assert plain_row_check(v.union(v.object({"a": v.string()}), v.object({}))) is None
    assert plain_row_check(v.object({"id": v.id("t")})) is None
    exact = plain_row_check(v.object({"a": v.string()}))
    assert exact is not None and exact({"a": "x"}) and not exact({"a": "x", "b": "y"})


def test_creation_keys_are_key_tails() -> None:
    pairs = [("kg27rxfv99gzp01wmph0gvt92d6hnvy6", 1.7e12), ("jd7a8fzb5qk1e8cdz0h6ft8ddx6hrb8z", 5e-324),
             ("jd7a8fzb5qk1e8cdz0h6ft8ddx6hrb8z", math.inf)]  # fmt: skip
    ids, times = [p[0] for p in pairs], [p[1] for p in pairs]
    expected = [key_tail({"_id": i, "_creationTime": t}) for i, t in pairs]
    assert creation_keys(ids, times) == expected  # by column
    mixed = [*ids, "k57"]
    times = [*times, -1.0]
    assert creation_keys(mixed, times) == [  # one at a time
        key_tail({"_id": i, "_creationTime": t}) for i, t in zip(mixed, times, strict=True)
    ]
    assert creation_keys(ids[:1], [0.0]) == [key_tail({"_id": ids[0], "_creationTime": 0.0})]
    assert creation_keys([], []) == []


def checker(validator: Any, specs: dict[str, IndexSpec] | None = None) -> RowChecker:
    store = Store()
    specs = specs or {BY_CREATION_TIME: IndexSpec(BY_CREATION_TIME, ())}
    return RowChecker("t", 10, Source("t.jsonl"), validator, specs, store.next_creation_time, 1e12)


def test_a_chunk_gets_ids_times_keys_and_entries() -> None:
    specs = {BY_CREATION_TIME: IndexSpec(BY_CREATION_TIME, ()), "by_s": IndexSpec("by_s", ("s",))}
    rows = checker(FLAT, specs)
    given = rows.check([(1, dict(GOOD))])[0][0]["_id"]  # an id from an earlier chunk
    chunk = [(2, dict(GOOD)), (3, {**GOOD, "f": 2}), (4, {"_id": given, **GOOD}),
             (5, {**GOOD, "_creationTime": 5.0})]  # fmt: skip
    with pytest.raises(ImportRefused, match=r"t\.jsonl:4: field _id: \S+ appears twice"):
        rows.check(chunk)
    rows = checker(FLAT, specs)
    other = checker(FLAT).check([(1, dict(GOOD))])[0][0]["_id"]
    chunk[2] = (4, {"_id": other, **GOOD})
    docs, keys, entries = rows.check(chunk)
    assert [d["_id"] for d in docs][2] == other
    assert docs[1]["f"] == 2.0 and type(docs[1]["f"]) is float
    assert docs[3]["_creationTime"] == 5.0
    times = [d["_creationTime"] for d in docs]
    assert times[0] < times[1] < times[2] and len({d["_id"] for d in docs}) == 4
    assert all(decode_id(d["_id"])[0] == 10 for d in docs)
    assert all(list(d)[-2:] == ["_id", "_creationTime"] for d in docs)
    for name, spec in specs.items():
        assert keys[name] == [spec.key(d) for d in docs]
    assert [(e.table, e.doc_id, e.keys) for e in entries] == [
        ("t", d["_id"], tuple((n, s.key(d)) for n, s in specs.items())) for d in docs
    ]
    assert rows.ids == {d["_id"] for d in docs}


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({**GOOD, "f": "x"}, r"t\.jsonl:7: field f: "),
        ({**GOOD, "extra": 1.0}, r"t\.jsonl:7: field \(the document\): .* extra field `extra`"),
        ({"_id": "nope", **GOOD}, r"t\.jsonl:7: field _id: 'nope' is not an id of table 't'"),
        ({"_creationTime": "x", **GOOD}, r"t\.jsonl:7: field _creationTime must be a number"),
    ],
)
def test_a_bad_row_is_named(row: dict[str, Any], message: str) -> None:
    with pytest.raises(ImportRefused, match=message):
        checker(FLAT).check([(6, dict(GOOD)), (7, row)])


def test_without_a_schema_rows_go_in_as_they_are() -> None:
    docs, _, _ = checker(None).check([(1, {"anything": [1.0]})])
    assert docs[0]["anything"] == [1.0] and "_id" in docs[0]

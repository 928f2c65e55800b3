"""The in-memory MVCC store: versions by commit timestamp, snapshot reads and scans, undo,
garbage collection of old versions, the commit clock and creation times."""

from __future__ import annotations

import time
from typing import Any

from pyconvex.runtime.store.index import IndexSpec, MemoryIndex, id_from_key, id_suffix
from pyconvex.runtime.store.memory import (
    BY_CREATION_TIME,
    SYSTEM_TABLES,
    Store,
    TableState,
    UndoRecord,
)
from pyconvex.values import encode_key

IDS = [f"{c}" * 31 for c in "abcdefgh"]  # fake, fixed-length ids


def make_store() -> tuple[Store, TableState]:
    store = Store(retention_ns=10**15)  # collect() is called explicitly where tested
    table = store.create_table("items")
    store.set_indexes(table, [IndexSpec("by_n", ("n",))])
    return store, table


def doc(i: int, n: float, ct: float | None = None) -> dict[str, Any]:
    return {"_id": IDS[i], "_creationTime": float(i) if ct is None else ct, "n": n}


def commit(
    store: Store, table: TableState, writes: list[tuple[int, dict[str, Any] | None]]
) -> UndoRecord:
    undo = UndoRecord(store.next_ts())
    for i, d in writes:
        store.write(table, IDS[i], d, 10, undo)
    store.mark_durable(undo.ts)
    return undo


def scan_ids(table: TableState, index: str, ts: int | None, reverse: bool = False) -> list[str]:
    return [d["_id"][0] for _, d in table.scan(index, None, None, reverse, ts)]


def test_tables_and_numbers() -> None:
    store = Store()
    assert {n: store.tables[n].number for n in SYSTEM_TABLES} == SYSTEM_TABLES
    a = store.create_table("a")
    b = store.create_table("b")
    assert store.create_table("a") is a
    assert b.number == a.number + 1 and a.number >= 10
    assert store.tables_by_number[a.number] is a
    assert not a.is_system and store.tables["_storage"].is_system
    store.drop_table("a")
    assert "a" not in store.tables and a.number not in store.tables_by_number


def test_a_system_table_made_when_first_written_takes_no_user_tables_number() -> None:
    """``_cron_jobs`` is made when crons first run, which can be before any user table: it
    must not take 10, the number an export's first user table carries into a fresh
    deployment."""
    store = Store()
    crons = store.create_table("_cron_jobs")
    users = store.create_table("users")
    assert crons.number < 10 and crons.number not in SYSTEM_TABLES.values()
    assert users.number == 10
    assert store.create_table("_other", 12).number == 12  # as loaded from disk: kept


def test_index_keys_carry_the_id() -> None:
    spec = IndexSpec("by_n", ("n",))
    key = spec.key(doc(0, 1.0))
    assert id_from_key(key) == IDS[0]
    assert key == encode_key([1.0, 0.0]) + id_suffix(IDS[0])
    nested = IndexSpec("by_vis", ("settings.visibility",))
    assert nested.values({"_creationTime": 1.0, "settings": {"visibility": "x"}})[0] == "x"


def test_snapshot_reads_see_the_version_of_their_timestamp() -> None:
    store, table = make_store()
    t1 = commit(store, table, [(0, doc(0, 1.0))]).ts
    t2 = commit(store, table, [(0, doc(0, 2.0))]).ts
    t3 = commit(store, table, [(0, None)]).ts
    assert table.get(IDS[0], t1 - 1) is None
    assert table.get(IDS[0], t1)["n"] == 1.0
    assert table.get(IDS[0], t2)["n"] == 2.0
    assert table.get(IDS[0], t3) is None
    assert table.get(IDS[0], None) is None


def test_snapshot_scans_use_the_old_index_position() -> None:
    store, table = make_store()
    t1 = commit(store, table, [(0, doc(0, 1.0)), (1, doc(1, 2.0)), (2, doc(2, 3.0))]).ts
    t2 = commit(store, table, [(0, doc(0, 9.0)), (1, None)]).ts
    assert scan_ids(table, "by_n", t1) == ["a", "b", "c"]
    assert scan_ids(table, "by_n", t2) == ["c", "a"]
    assert scan_ids(table, "by_n", t2, reverse=True) == ["a", "c"]
    assert scan_ids(table, BY_CREATION_TIME, t1) == ["a", "b", "c"]
    assert scan_ids(table, BY_CREATION_TIME, t2) == ["a", "c"]
    assert scan_ids(table, "by_n", t1 - 1) == []


def test_writes_in_one_transaction_keep_only_the_last_version() -> None:
    store, table = make_store()
    undo = UndoRecord(store.next_ts())
    store.write(table, IDS[0], doc(0, 1.0), 10, undo)
    store.write(table, IDS[0], doc(0, 2.0), 10, undo)
    store.write(table, IDS[0], doc(0, 3.0), 10, undo)
    store.mark_durable(undo.ts)
    assert len(undo.touched) == 1
    assert scan_ids(table, "by_n", undo.ts) == ["a"]
    assert len(table.indexes["by_n"]) == 1  # the intermediate keys are gone
    (entry,) = store.write_entries(undo)
    assert entry.doc_id == IDS[0]
    assert {name for name, _ in entry.keys} == {"by_n", BY_CREATION_TIME}


def test_write_entries_hold_old_and_new_keys() -> None:
    store, table = make_store()
    commit(store, table, [(0, doc(0, 1.0))])
    undo = commit(store, table, [(0, doc(0, 5.0))])
    (entry,) = store.write_entries(undo)
    spec = table.indexes["by_n"].spec
    by_n = [k for name, k in entry.keys if name == "by_n"]
    assert set(by_n) == {spec.key(doc(0, 1.0)), spec.key(doc(0, 5.0))}
    ct_spec = table.indexes[BY_CREATION_TIME].spec
    assert {k for name, k in entry.keys if name == BY_CREATION_TIME} == {ct_spec.key(doc(0, 5.0))}


def test_undo_takes_a_transaction_back_out() -> None:
    store, table = make_store()
    t1 = commit(store, table, [(0, doc(0, 1.0)), (1, doc(1, 2.0))]).ts
    keys_before = list(table.indexes["by_n"].keys)
    undo = UndoRecord(store.next_ts())
    store.write(table, IDS[0], doc(0, 7.0), 10, undo)
    store.write(table, IDS[1], None, 0, undo)
    store.write(table, IDS[2], doc(2, 0.0), 10, undo)
    assert scan_ids(table, "by_n", None) == ["c", "a"]
    store.undo(undo)
    assert scan_ids(table, "by_n", None) == ["a", "b"]
    assert scan_ids(table, "by_n", t1) == ["a", "b"]
    assert list(table.indexes["by_n"].keys) == keys_before
    assert table.get(IDS[2], None) is None and IDS[2] not in table.sizes


def test_undo_of_a_created_table_drops_it() -> None:
    store = Store()
    t = store.create_table("fresh")
    undo = UndoRecord(store.next_ts(), created_tables=["fresh"])
    store.write(t, IDS[0], doc(0, 1.0), 10, undo)
    store.undo(undo)
    assert "fresh" not in store.tables


def test_gc_forgets_versions_older_than_the_horizon() -> None:
    store, table = make_store()
    t1 = commit(store, table, [(0, doc(0, 1.0))]).ts
    t2 = commit(store, table, [(0, doc(0, 2.0))]).ts
    assert table.get(IDS[0], t1)["n"] == 1.0
    store.collect(t2)
    assert store.gc_horizon == t2
    assert IDS[0] not in table.history  # one version left: no history needed
    assert list(table.indexes["by_n"].keys) == [table.indexes["by_n"].spec.key(doc(0, 2.0))]
    assert table.get(IDS[0], t2)["n"] == 2.0
    # The horizon never passes the durable timestamp.
    store.collect(t2 + 10**12)
    assert store.gc_horizon == store.durable_ts


def test_gc_keeps_versions_inside_the_retention_window() -> None:
    store = Store(retention_ns=10**15)
    table = store.create_table("items")
    t1 = commit(store, table, [(0, doc(0, 1.0))]).ts
    commit(store, table, [(0, doc(0, 2.0))])
    assert table.get(IDS[0], t1)["n"] == 1.0


def test_commit_clock_is_strictly_increasing_even_if_the_wall_clock_is_not(
    monkeypatch: Any,
) -> None:
    store = Store()
    store.head_ts = time.time_ns() + 10**12  # e.g. restored from a machine whose clock was ahead
    before = store.head_ts
    a = store.next_ts()
    b = store.next_ts()
    assert before < a < b
    monkeypatch.setattr(time, "time_ns", lambda: 5)
    assert store.next_ts() == b + 1


def test_creation_times_are_strictly_increasing() -> None:
    store = Store()
    a = store.next_creation_time(1000.0)
    b = store.next_creation_time(1000.0)
    c = store.next_creation_time(999.0)
    assert a == 1000.0 and a < b < c
    big = store.next_creation_time(1.8e12)
    assert store.next_creation_time(1.8e12) > big


def test_delete_all_deletes_every_document_at_one_timestamp() -> None:
    store, table = make_store()
    commit(store, table, [(i, doc(i, float(i))) for i in range(6)])
    store.collect(store.durable_ts)  # one version each, out of the history
    assert not table.history
    commit(store, table, [(1, doc(1, 10.0)), (2, None)])  # recent writes: in the history
    before = store.durable_ts
    expected = {
        IDS[i]: tuple((n, mem.spec.key(table.doc(IDS[i]))) for n, mem in table.indexes.items())  # type: ignore[arg-type]
        for i in (0, 1, 3, 4, 5)
    }
    undo = UndoRecord(store.next_ts())
    entries = store.delete_all(table, undo)
    assert {e.doc_id: e.keys for e in entries} == expected
    assert not table.docs and not table.sizes
    assert sorted(scan_ids(table, "by_n", before)) == ["a", "b", "d", "e", "f"]
    assert table.get(IDS[1], before) == doc(1, 10.0) and table.get(IDS[0], before) == doc(0, 0.0)
    assert scan_ids(table, "by_n", undo.ts) == [] and table.get(IDS[3], None) is None
    assert {d for _, d in undo.touched} == set(expected)
    assert {e.doc_id for e in store.write_entries(undo)} == set(expected)
    store.undo(undo)  # (a failed commit) puts them all back
    assert sorted(scan_ids(table, "by_n", None)) == ["a", "b", "d", "e", "f"]
    assert table.doc(IDS[1]) == doc(1, 10.0)
    store.undo(commit(store, table, []))
    undo = UndoRecord(store.next_ts())
    store.delete_all(table, undo)
    store.mark_durable(undo.ts)
    store.collect(undo.ts)
    assert not table.history and all(len(mem) == 0 for mem in table.indexes.values())


def test_keys_appended_after_all_an_index_holds_behave_as_added_ones() -> None:
    """``MemoryIndex.append_greater`` (an import into a new table) lays keys out as
    SortedList would, and refuses keys that do not sort after all it holds."""
    appended, added = MemoryIndex(IndexSpec("i", ())), MemoryIndex(IndexSpec("i", ()))
    keys = [i.to_bytes(4, "big") for i in range(0, 30_000, 3)]
    for start in range(0, len(keys), 2_500):
        assert appended.append_greater(keys[start : start + 2_500])
    added.keys.update(keys)
    assert list(appended.keys) == list(added.keys) and len(appended) == len(keys)
    assert not appended.append_greater([keys[5]])  # not after the last: nothing done
    assert len(appended) == len(keys)
    for mem in (appended, added):  # then the usual operations
        mem.add((7).to_bytes(4, "big"))
        mem.discard(keys[100])
    assert list(appended.keys) == list(added.keys)
    assert appended.keys[5000] == added.keys[5000]
    lo, hi = keys[10], keys[5000]
    assert list(appended.scan(lo, hi, True)) == list(added.scan(lo, hi, True))


def test_gc_forgets_at_most_its_budget_a_call_and_says_when_more_is_left() -> None:
    store, table = make_store()
    for i in range(6):  # six documents with an old version each
        commit(store, table, [(i, doc(i, 1.0))])
    last = 0
    for i in range(6):
        last = commit(store, table, [(i, doc(i, 2.0))]).ts
    assert len(table.history) == 6
    assert store.collect(last, budget=4) is True  # the budget ran out with more to forget
    left = len(table.history)
    assert 0 < left < 6
    while store.collect(last, budget=4):
        pass
    assert not table.history  # all old versions forgotten, the newest kept
    assert [table.get(IDS[i], last)["n"] for i in range(6)] == [2.0] * 6
    assert store.collect(last, budget=4) is False

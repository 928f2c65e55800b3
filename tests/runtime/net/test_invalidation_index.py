"""The subscription manager's invalidation index against the definition it speeds up.

``SubscriptionManager.invalidated_by`` files read ranges by (table, index, common prefix) and
ids by id, so a commit is checked only against the subscriptions that could contain its keys.
The definition is simpler: a subscription is invalidated exactly when its read set intersects
some commit's write set (``ReadSet.intersects``). On random read sets (subscribed, some then
unsubscribed) and random commits, both must name the same subscriptions. Keys are short and
drawn from a few bytes, so prefixes, range ends and shared ranges collide often.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from pyconvex.runtime.functions.results import FunctionResult
from pyconvex.runtime.net.subscriptions import Subscription, SubscriptionManager
from pyconvex.runtime.store.read_set import (
    BULK_WRITES,
    Commit,
    CommitListener,
    ReadSet,
    WriteEntry,
    WriteSet,
)
from pyconvex.values import Value
from pyconvex.values.ids import encode_id

TABLES = ("messages", "users")
INDEXES = ("by_creation_time", "by_author")
IDS = tuple(f"id{i}" for i in range(6))

keys = st.lists(st.sampled_from([0, 1, 2, 255]), max_size=4).map(bytes)
ranges = st.tuples(
    st.sampled_from(TABLES), st.sampled_from(INDEXES), st.none() | keys, st.none() | keys
)
read_sets = st.tuples(
    st.lists(ranges, max_size=4), st.lists(st.sampled_from(IDS), max_size=2, unique=True)
)
entries = st.builds(
    WriteEntry,
    st.sampled_from(TABLES),
    st.sampled_from(IDS),
    st.lists(st.tuples(st.sampled_from(INDEXES), keys), max_size=4).map(tuple),
)
commits = st.lists(
    st.builds(
        Commit, st.integers(1, 10**6), st.lists(entries, min_size=1, max_size=4).map(WriteSet)
    ),
    min_size=1,
    max_size=3,
)

RangeSpec = tuple[str, str, bytes | None, bytes | None]
ReadSpec = tuple[list[RangeSpec], list[str]]


def build(spec: ReadSpec) -> ReadSet:
    rs = ReadSet()
    for table, index, lo, hi in spec[0]:
        rs.add_range(table, index, lo, hi)
    for doc_id in spec[1]:
        rs.add_id(doc_id)
    return rs


class StubQueries:
    """A deployment whose query ``q:read`` with ``{"i": i}`` read ``read_sets[i]``."""

    latest_ts = 0

    def __init__(self, specs: list[ReadSpec]) -> None:
        self.specs = specs

    def run_query(self, path: str, args: dict[str, Value], **_: Any) -> FunctionResult:
        i = int(args["i"])  # type: ignore[arg-type]
        return FunctionResult(value=float(i), read_set=build(self.specs[i]), ts=0)

    def add_commit_listener(
        self, listener: CommitListener, *, prepare: bool = False, first: bool = False
    ) -> Callable[[], None]:
        return lambda: None


class Watcher:
    def subscriptions_updated(self, ts: int, changed: list[tuple[int, Subscription]]) -> None:
        pass


@seed(8)
@settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    specs=st.lists(read_sets, min_size=1, max_size=8),
    dropped=st.lists(st.booleans(), min_size=8, max_size=8),
    batch=commits,
)
def test_the_index_invalidates_exactly_what_the_read_sets_intersect(
    specs: list[ReadSpec], dropped: list[bool], batch: list[Commit]
) -> None:
    manager = SubscriptionManager(StubQueries(specs))
    watcher = Watcher()
    subs = [manager.subscribe(watcher, i, "q:read", [{"i": float(i)}]) for i in range(len(specs))]
    live = []
    for i, sub in enumerate(subs):
        if dropped[i]:  # the index must forget what it filed for a subscription that is gone
            manager.unsubscribe(watcher, i, sub)
        else:
            live.append(i)
    assert len(manager) == len(live)

    expected = {subs[i] for i in live if any(build(specs[i]).intersects(c.writes) for c in batch)}
    assert manager.invalidated_by(batch) == expected


def test_a_bulk_commit_invalidates_whatever_read_its_tables() -> None:
    """A commit of more than BULK_WRITES documents (an import) is not tested key by key: every
    subscription that read one of its tables is re-run (a superset of the exact answer), and
    none that read only other tables."""
    messages = [encode_id(10, i.to_bytes(16, "big")) for i in range(BULK_WRITES + 1)]
    user = encode_id(11, bytes(16))
    specs: list[ReadSpec] = [
        ([("messages", "by_author", b"\x00", b"\x01")], []),  # a range its keys miss
        ([], [messages[5]]),  # an id it writes
        ([], [encode_id(10, b"\xff" * 16)]),  # an id of its table it does not write
        ([("users", "by_creation_time", None, None)], [user]),  # another table only
    ]
    manager = SubscriptionManager(StubQueries(specs))
    watcher = Watcher()
    subs = [manager.subscribe(watcher, i, "q:read", [{"i": float(i)}]) for i in range(len(specs))]
    writes = WriteSet([WriteEntry("messages", i, (("by_author", b"\x09"),)) for i in messages])
    assert manager.invalidated_by([Commit(1, writes)]) == set(subs[:3])

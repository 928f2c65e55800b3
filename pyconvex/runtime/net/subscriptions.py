"""Shared query subscriptions and their invalidation by commits.

Every socket's queries go through one :class:`SubscriptionManager`. Identical subscriptions
(same normalised path, same args, same identity, same starting journal) share one
:class:`Subscription`: one execution, one result, serialised once. When a batch of commits
becomes durable the manager finds the subscriptions whose read sets contain a written key,
re-runs each of them once at the new timestamp, and hands every affected subscriber the list of
its queries whose result changed — so a socket sends one Transition per commit batch.

Read sets are indexed by ``(table, index)`` and by document id, so a write only costs range
checks against the subscriptions that read that index or that document::

    manager = SubscriptionManager(deployment)
    sub = manager.subscribe(session, query_id=1, udf_path="messages:list", raw_args=[{}])
    sub.body  # '{"type":"QueryUpdated","value":[...],"logLines":[],"journal":null}'
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any, Protocol

from pyconvex.protocol import log_function_lines, query_result_body, shared_body
from pyconvex.runtime.functions.function_path import normalize_path
from pyconvex.runtime.functions.results import (
    FunctionResult,
    redacted,
    redacts_for_clients,
)
from pyconvex.runtime.net.call_bodies import SERVER_ERROR as SERVER_ERROR
from pyconvex.runtime.net.call_bodies import decode_args as decode_args
from pyconvex.runtime.net.call_bodies import internal_error, result_body
from pyconvex.runtime.query.transaction import table_number_of
from pyconvex.runtime.store.read_set import BULK_WRITES, Commit, CommitListener, WriteSet
from pyconvex.values import Value, encode_value

if TYPE_CHECKING:
    from pyconvex.runtime.store.read_set import ReadSet

_log = logging.getLogger("pyconvex.sync")

#: Write entries past which a batch's queries are not re-run ahead of its durability.
PREPARE_MAX = 10_000

#: A query's run for a subscription: its result, and the body it serialises to.
_Ran = tuple[FunctionResult, str]


class QueryRunner(Protocol):
    """The part of the Deployment the manager needs."""

    @property
    def latest_ts(self) -> int: ...

    def run_query(
        self,
        path: str,
        args: dict[str, Value],
        *,
        identity: object = None,
        ts: int | None = None,
        journal: str | None = None,
        allow_internal: bool = False,
        speculative: bool = False,
    ) -> FunctionResult: ...

    def add_commit_listener(
        self, listener: CommitListener, *, prepare: bool = False, first: bool = False
    ) -> Callable[[], None]: ...


class Subscriber(Protocol):
    """A socket session, told which of its queries changed at ``ts``."""

    def subscriptions_updated(self, ts: int, changed: list[tuple[int, Subscription]]) -> None:
        """``changed`` may be handed to other subscribers too: read it, do not change it."""
        ...


def _identity_key(identity: object) -> Hashable:
    if identity is None:
        return None
    try:
        hash(identity)
    except TypeError:
        return ("id", id(identity))
    return identity


class Subscription:
    """One shared query: its inputs, latest result and who watches it.

    ``body`` is the serialised QueryUpdated/QueryFailed without a ``queryId``, and
    ``shared`` the same as the bytes every subscriber's Transition is written around (encoded
    once per result); ``version`` goes up each time ``body`` changes.
    """

    __slots__ = (
        "allow_internal",
        "args",
        "body",
        "identity",
        "journal",
        "key",
        "path",
        "read_set",
        "registrations",
        "requested_journal",
        "shared",
        "ts",
        "udf_path",
        "version",
        "watchers",
    )

    def __init__(
        self,
        key: tuple[Hashable, ...] | None,
        udf_path: str,
        path: str | None,
        args: dict[str, Value] | None,
        identity: object,
        journal: str | None,
        allow_internal: bool = False,
    ) -> None:
        self.key = key
        self.allow_internal = allow_internal  # an admin session's: internal queries run
        self.udf_path = udf_path  # as the client sent it, for re-subscribing
        self.path = path  # normalised; None when the path was invalid
        self.args = args
        self.identity = identity
        self.requested_journal = journal
        self.journal = journal
        self.read_set: ReadSet | None = None
        self.registrations: list[tuple[tuple[str, str], bytes]] = []
        self.body = ""
        self.shared = b""
        self.version = 0
        self.ts = 0
        self.watchers: dict[Subscriber, set[int]] = {}

    def __repr__(self) -> str:
        return f"Subscription({self.path or self.udf_path!r}, version={self.version})"


class SubscriptionManager:
    """All subscriptions of one deployment, kept current as commits land.

    ``ts`` is the timestamp up to which commits have been applied: every subscription's result
    is valid at ``ts``, so sessions put it in their Transitions. ``executions`` counts query
    runs and ``range_checks`` read-set probes (tests and benchmarks read both).
    """

    def __init__(self, deployment: QueryRunner) -> None:
        self._deployment = deployment
        self.ts = deployment.latest_ts
        self.executions = 0
        self.range_checks = 0
        self._subs: dict[tuple[Hashable, ...], Subscription] = {}
        # (table, index) -> prefix length -> prefix -> subscriptions with a range under it
        self._by_range: dict[tuple[str, str], dict[int, dict[bytes, set[Subscription]]]] = {}
        self._by_id: dict[str, set[Subscription]] = {}
        self._waiters: list[tuple[int, int, Callable[[], None]]] = []
        self._waiter_seq = itertools.count()
        # First: a write's subscribers get their updates before the scheduler and the other
        # listeners do their bookkeeping (~8 µs sooner on a write after idle, traced).
        self._remove_listener = deployment.add_commit_listener(self._on_commit, first=True)
        self._remove_preparer = deployment.add_commit_listener(self._prepare, prepare=True)
        #: Queries re-run for a batch not yet durable: its commits (the list the committer
        #: hands both calls), and per subscription the read set it was run over and the run.
        self._prepared: (
            tuple[list[Commit], dict[Subscription, tuple[ReadSet | None, _Ran]]] | None
        ) = None

    def close(self) -> None:
        self._remove_listener()
        self._remove_preparer()

    def __len__(self) -> int:
        return len(self._subs)

    # -- subscribing ------------------------------------------------------------------------

    def subscribe(
        self,
        subscriber: Subscriber,
        query_id: int,
        udf_path: str,
        raw_args: Any,
        *,
        identity: object = None,
        journal: str | None = None,
        component_path: str | None = None,
        allow_internal: bool = False,
    ) -> Subscription:
        """Watch a query for ``subscriber`` under ``query_id``; runs it unless already shared.

        ``allow_internal`` (admin sessions) lets it name internal queries; such subscriptions
        are never shared with other sessions' ones."""
        sub = self._lookup(udf_path, raw_args, identity, journal, component_path, allow_internal)
        sub.watchers.setdefault(subscriber, set()).add(query_id)
        return sub

    def resubscribe(
        self,
        subscriber: Subscriber,
        query_id: int,
        old: Subscription,
        *,
        identity: object,
        allow_internal: bool = False,
    ) -> Subscription:
        """Move a watched query to a new identity (after Authenticate)."""
        if old.path is None or old.args is None:
            return old
        key = _key(old.path, old.args, identity, old.requested_journal, allow_internal)
        if key == old.key:
            return old
        self.unsubscribe(subscriber, query_id, old)
        sub = self._subs.get(key) or self._create(
            key, old.udf_path, old.path, old.args, identity, old.requested_journal, allow_internal
        )
        sub.watchers.setdefault(subscriber, set()).add(query_id)
        return sub

    def unsubscribe(self, subscriber: Subscriber, query_id: int, sub: Subscription) -> None:
        ids = sub.watchers.get(subscriber)
        if ids is None:
            return
        ids.discard(query_id)
        if not ids:
            del sub.watchers[subscriber]
        if not sub.watchers and sub.key is not None and self._subs.get(sub.key) is sub:
            del self._subs[sub.key]
            self._unindex(sub)

    def _lookup(
        self,
        udf_path: str,
        raw_args: Any,
        identity: object,
        journal: str | None,
        component_path: str | None,
        allow_internal: bool = False,
    ) -> Subscription:
        try:
            path = normalize_path(udf_path)
        except ValueError as exc:
            return self._static_failure(udf_path, None, str(exc))
        if component_path:
            return self._static_failure(
                udf_path,
                path,
                f"Component paths are not supported (got componentPath {component_path!r}); "
                "call the function without a componentPath.",
            )
        try:
            args = decode_args(raw_args)
        except ValueError as exc:
            return self._static_failure(udf_path, path, f"Invalid arguments for {path}: {exc}")
        key = _key(path, args, identity, journal, allow_internal)
        sub = self._subs.get(key)
        if sub is None:
            sub = self._create(key, udf_path, path, args, identity, journal, allow_internal)
        return sub

    def _create(
        self,
        key: tuple[Hashable, ...],
        udf_path: str,
        path: str,
        args: dict[str, Value],
        identity: object,
        journal: str | None,
        allow_internal: bool = False,
    ) -> Subscription:
        sub = Subscription(key, udf_path, path, args, identity, journal, allow_internal)
        self._execute(sub, self.ts)
        self._subs[key] = sub
        self._index(sub)
        return sub

    def failed(self, udf_path: str, message: str) -> Subscription:
        """A query answered with ``message`` as its error, not run and not shared (e.g. one
        over a connection's limit)."""
        return self._static_failure(udf_path, None, message)

    def _static_failure(self, udf_path: str, path: str | None, message: str) -> Subscription:
        # Never shared and never re-run: nothing it depends on can change by a commit.
        sub = Subscription(None, udf_path, path, None, None, None)
        sub.body = query_result_body(None, [], None, error_message=message)
        sub.shared = shared_body(sub.body)
        sub.ts = self.ts
        return sub

    # -- running ----------------------------------------------------------------------------

    def _run(self, sub: Subscription, ts: int, *, speculative: bool = False) -> _Ran:
        """Run ``sub``'s query at ``ts``: its result (redacted as clients see it), and the
        body it serialises to."""
        assert sub.path is not None and sub.args is not None
        self.executions += 1
        try:
            result = self._deployment.run_query(
                sub.path,
                sub.args,
                identity=sub.identity,
                ts=ts,
                journal=sub.journal,
                allow_internal=sub.allow_internal,
                speculative=speculative,
            )
        except Exception:
            _log.exception("query %s crashed the engine", sub.path)
            result = FunctionResult(failure=internal_error())
        if not sub.allow_internal and redacts_for_clients(self._deployment):
            result = redacted(result)
        journal = sub.journal if result.journal is None else result.journal
        return result, result_body(sub.path, result, journal)

    def _execute(self, sub: Subscription, ts: int, ran: _Ran | None = None) -> bool:
        """Run ``sub`` at ``ts`` (or take ``ran``, its run at ``ts`` made beforehand); return
        whether its serialised result changed."""
        result, body = self._run(sub, ts) if ran is None else ran
        log_function_lines("query", sub.path or "", result.log_lines)
        sub.read_set = result.read_set
        sub.ts = ts
        if result.journal is not None:
            sub.journal = result.journal
        if body == sub.body:
            return False
        sub.body = body
        sub.shared = shared_body(body)
        sub.version += 1
        return True

    # -- invalidation -----------------------------------------------------------------------

    def _index(self, sub: Subscription) -> None:
        # A range [lo, hi) holds only keys that start with the common prefix of lo and hi, so
        # ranges are bucketed by (table, index, prefix): a written key is checked only against
        # the ranges filed under one of its own prefixes, not against every subscription.
        rs = sub.read_set
        if rs is None:
            return
        registrations = sub.registrations
        for table_index, ranges in rs.ranges.items():
            by_length = self._by_range.setdefault(table_index, {})
            for r in ranges:
                prefix = _common_prefix(r.lo, r.hi)
                by_length.setdefault(len(prefix), {}).setdefault(prefix, set()).add(sub)
                registrations.append((table_index, prefix))
        for doc_id in rs.ids:
            self._by_id.setdefault(doc_id, set()).add(sub)

    def _unindex(self, sub: Subscription) -> None:
        for table_index, prefix in sub.registrations:
            by_length = self._by_range.get(table_index)
            if by_length is None:
                continue
            by_prefix = by_length.get(len(prefix))
            if by_prefix is None:
                continue
            subs = by_prefix.get(prefix)
            if subs is None:
                continue
            subs.discard(sub)
            if not subs:
                del by_prefix[prefix]
                if not by_prefix:
                    del by_length[len(prefix)]
                    if not by_length:
                        del self._by_range[table_index]
        sub.registrations = []
        rs = sub.read_set
        if rs is None:
            return
        for doc_id in rs.ids:
            subs = self._by_id.get(doc_id)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._by_id[doc_id]

    def invalidated_by(self, commits: list[Commit]) -> set[Subscription]:
        """The subscriptions whose read sets contain a key written by ``commits``."""
        hit: set[Subscription] = set()
        by_range, by_id = self._by_range, self._by_id
        for commit in commits:
            if commit.writes.bulk or len(commit.writes) > BULK_WRITES:
                hit |= self._reading_tables(commit.writes)
                continue
            for entry in commit.writes.entries:
                subs = by_id.get(entry.doc_id)
                if subs:
                    hit |= subs
                table = entry.table
                for index, key in entry.keys:
                    by_length = by_range.get((table, index))
                    if not by_length:
                        continue
                    for length, by_prefix in by_length.items():
                        candidates = by_prefix.get(key[:length])
                        if not candidates:
                            continue
                        for sub in candidates:
                            if sub in hit:
                                continue
                            self.range_checks += 1
                            rs = sub.read_set
                            if rs is not None and rs.contains_key(table, index, key):
                                hit.add(sub)
        return hit

    def _reading_tables(self, writes: WriteSet) -> set[Subscription]:
        """Every subscription that read anything of the tables ``writes`` wrote: a bulk write
        (an import) re-runs them all, rather than holding the loop to test each key."""
        tables = writes.tables()
        some_id: dict[str, str] = {}  # an id of each table, for its number
        for entry in writes.entries:
            if entry.table not in some_id:
                some_id[entry.table] = entry.doc_id
                if len(some_id) == len(tables):
                    break
        hit: set[Subscription] = set()
        for (table, _), by_length in self._by_range.items():
            if table in some_id:
                for by_prefix in by_length.values():
                    for subs in by_prefix.values():
                        hit |= subs
        numbers = {table_number_of(doc_id) for doc_id in some_id.values()}
        for doc_id, subs in self._by_id.items():
            if table_number_of(doc_id) in numbers:
                hit |= subs
        return hit

    def rerun_all(self) -> None:
        """Re-run every subscription on the code now deployed (after a push swapped it in),
        failures included, and hand each subscriber its changed queries in one call."""
        changed: list[Subscription] = []
        for sub in list(self._subs.values()):
            self._unindex(sub)
            if self._execute(sub, self.ts):
                changed.append(sub)
            self._index(sub)
        self._hand_out(self.ts, changed)

    def _prepare(self, ts: int, commits: list[Commit]) -> None:
        """Re-run, at ``ts``, the queries ``commits`` invalidate while their batch is being made
        durable (the event loop is free then; after idle it would be free until the batch is):
        the results are held, and handed out when the batch is durable unless their
        subscription ran again meanwhile. A batch that fails never comes; its runs are dropped
        with the next batch's."""
        self._prepared = None
        fresh = [c for c in commits if c.ts > self.ts]
        if not fresh or ts <= self.ts or sum(map(len, (c.writes for c in fresh))) > PREPARE_MAX:
            return  # (an import's million writes: intersected once, when durable)
        runs: dict[Subscription, tuple[ReadSet | None, _Ran]] = {}
        for sub in self.invalidated_by(fresh):
            if sub.key is not None and self._subs.get(sub.key) is sub:
                runs[sub] = (sub.read_set, self._run(sub, ts, speculative=True))
        self._prepared = (commits, runs)

    def _on_commit(self, latest_ts: int, commits: list[Commit]) -> None:
        prepared = self._prepared
        self._prepared = None
        runs = prepared[1] if prepared is not None and prepared[0] is commits else {}
        fresh = [c for c in commits if c.ts > self.ts]
        if latest_ts <= self.ts and not fresh:
            return
        new_ts = max(latest_ts, self.ts)
        hit = self.invalidated_by(fresh) if fresh else set()
        self.ts = new_ts
        changed: list[Subscription] = []
        for sub in hit:
            if sub.key is None or self._subs.get(sub.key) is not sub:
                continue
            self._unindex(sub)
            run = runs.get(sub)
            ready = run[1] if run is not None and run[0] is sub.read_set else None
            if self._execute(sub, new_ts, ready if new_ts == latest_ts else None):
                changed.append(sub)
            self._index(sub)
        self._hand_out(new_ts, changed)
        self._fire_waiters()

    def _hand_out(self, ts: int, changed: list[Subscription]) -> None:
        """Give every subscriber all its queries among ``changed``, in one call each."""
        if len(changed) == 1:
            # The usual fan-out, one shared query to many sockets: no grouping per subscriber.
            # (A copy: a subscriber may drop its subscriptions while being told.)
            sub = changed[0]
            lists: dict[int, list[tuple[int, Subscription]]] = {}  # shared by query id
            for subscriber, query_ids in list(sub.watchers.items()):
                if len(query_ids) == 1:
                    (query_id,) = query_ids
                    entries = lists.get(query_id)
                    if entries is None:
                        entries = lists[query_id] = [(query_id, sub)]
                else:
                    entries = [(query_id, sub) for query_id in query_ids]
                try:
                    subscriber.subscriptions_updated(ts, entries)
                except Exception:
                    _log.exception("a subscriber failed to take its updates")
            return
        grouped: dict[Subscriber, list[tuple[int, Subscription]]] = {}
        for sub in changed:
            for subscriber, query_ids in sub.watchers.items():
                grouped.setdefault(subscriber, []).extend((qid, sub) for qid in query_ids)
        for subscriber, entries in grouped.items():
            try:
                subscriber.subscriptions_updated(ts, entries)
            except Exception:
                _log.exception("a subscriber failed to take its updates")

    # -- waiting for a timestamp --------------------------------------------------------------

    def when_ts_reached(self, ts: int, callback: Callable[[], None]) -> None:
        """Call ``callback`` (on the loop, synchronously) once commits up to ``ts`` are applied."""
        if ts <= self.ts:
            callback()
            return
        heapq.heappush(self._waiters, (ts, next(self._waiter_seq), callback))

    def _fire_waiters(self) -> None:
        while self._waiters and self._waiters[0][0] <= self.ts:
            _, _, callback = heapq.heappop(self._waiters)
            try:
                callback()
            except Exception:
                _log.exception("a timestamp waiter failed")


def _common_prefix(lo: bytes, hi: bytes | None) -> bytes:
    if hi is None:
        return b""
    n = min(len(lo), len(hi))
    i = 0
    while i < n and lo[i] == hi[i]:
        i += 1
    return lo[:i]


def _key(
    path: str, args: dict[str, Value], identity: object, journal: str | None, internal: bool
) -> tuple[Hashable, ...]:
    key: tuple[Hashable, ...] = (path, _args_key(args), _identity_key(identity), journal)
    return (*key, True) if internal else key


def _args_key(args: dict[str, Value]) -> str:
    return json.dumps(encode_value(args), sort_keys=True, separators=(",", ":"))

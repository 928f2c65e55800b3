"""Results of WebSocket mutations by (session, request id), kept while a client may re-send.

A client re-sends the mutations it has no answer for when it reconnects, under the same
session id (PROTOCOL.md §1.5); the answer it gets must be the first run's, not a second run. A
client that has been gone longer than :data:`WINDOW_NS` starts a new session, so results older
than that are dropped — here as new ones arrive, and from the log when it is pruned — and at
most :data:`MAX_RESULTS` are held, so memory and disk stay bounded under any traffic.

A session keeps its newest :data:`PER_SESSION` results: what it re-sends after a reconnect are
the mutations whose answers were lost with the connection — at most what was on its way when
the connection broke (a few hundred KB of answers) — so a busy session does not fill the map
with results no client can ask for again.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping

from pyconvex.runtime.store.committer import RESULTS_WINDOW_NS as WINDOW_NS
from pyconvex.runtime.store.persistence import RESULTS_PER_SESSION

MAX_RESULTS = 250_000
PER_SESSION = RESULTS_PER_SESSION

Key = tuple[str, int]
Entry = tuple[int, str]  # (commit ts, the result as Convex JSON)


class SessionResults:
    """A bounded map (session id, request id) -> (commit ts, encoded result), oldest first."""

    __slots__ = (
        "_entries",
        "_order",
        "_order_entries",
        "_sessions",
        "max_results",
        "per_session",
        "window_ns",
    )

    def __init__(
        self,
        loaded: Mapping[Key, Entry] | None = None,
        *,
        window_ns: int = WINDOW_NS,
        max_results: int = MAX_RESULTS,
        per_session: int = PER_SESSION,
    ) -> None:
        self.window_ns = window_ns
        self.max_results = max_results
        self.per_session = per_session
        self._entries: dict[Key, Entry] = {}
        #: Keys oldest first, some already gone from ``_entries`` (skipped when reached). Not
        #: ``next(iter(_entries))``: a dict whose oldest items were deleted scans their empty
        #: slots on every call, until it is next resized (measured: 15-60 us per result once
        #: 100 sessions were at their cap).
        self._order: deque[Key] = deque()
        #: The entry each key of ``_order`` was added with (a key dropped and added again is
        #: the newer one's only where it was added last).
        self._order_entries: deque[Entry] = deque()
        #: Each session's request ids in ``_entries``, oldest first.
        self._sessions: dict[str, deque[int]] = {}
        if loaded:
            newest = max(ts for ts, _ in loaded.values())
            for key, entry in sorted(loaded.items(), key=lambda item: item[1][0]):
                if entry[0] >= newest - window_ns:
                    self._add(key, entry)
            self._trim(newest)

    def get(self, key: Key) -> Entry | None:
        return self._entries.get(key)

    def __setitem__(self, key: Key, entry: Entry) -> None:
        self._add(key, entry)
        self._trim(entry[0])

    def _add(self, key: Key, entry: Entry) -> None:
        if key in self._entries:  # (its place in the order moves to the newest)
            self._entries[key] = entry
            self._order.append(key)
            self._order_entries.append(entry)
            return
        self._entries[key] = entry
        self._order.append(key)
        self._order_entries.append(entry)
        session, request = key
        ids = self._sessions.get(session)
        if ids is None:
            ids = self._sessions[session] = deque()
        ids.append(request)
        while len(ids) > self.per_session:
            self._entries.pop((session, ids.popleft()), None)

    def pop(self, key: Key, default: Entry | None = None) -> Entry | None:
        # (The session's id list keeps the key until it comes off its front.)
        return self._entries.pop(key, default)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def _trim(self, now_ts: int) -> None:
        entries, order, added = self._entries, self._order, self._order_entries
        if len(order) > 2 * len(entries) + 1024:  # mostly keys already gone: keep it bounded
            self._order = order = deque(entries)
            self._order_entries = added = deque(entries.values())
        cutoff = now_ts - self.window_ns
        while order:
            key = order[0]
            entry = entries.get(key)
            if entry is not added[0]:  # dropped already (its session's cap, a failed batch)
                order.popleft()
                added.popleft()
                continue
            if entry[0] >= cutoff and len(entries) <= self.max_results:
                break
            order.popleft()
            added.popleft()
            del entries[key]
            session = key[0]
            ids = self._sessions.get(session)
            while ids and (session, ids[0]) not in entries:
                ids.popleft()
            if not ids:
                self._sessions.pop(session, None)

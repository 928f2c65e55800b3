"""The client's query set: which queries it wants, under which ids, and the changes the server
has not been told about yet.

Identical subscriptions (same function, same arguments) share one query id, counted; query
ids count up for the client's whole life, never per socket (PROTOCOL.md §1.2). On a new socket
the whole set is sent again as ``ModifyQuerySet{0→1}``, each query with the last journal the
server gave it (so a paginated page keeps its end boundary)::

    >>> state = LocalState()
    >>> q, added = state.subscribe("messages:list", {})
    >>> added, state.subscribe("messages:list", {})[1]
    (True, False)
    >>> state.take_modify_query_set().new_version
    1
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pyconvex.client.function_names import query_token
from pyconvex.protocol import AddQuery, ModifyQuerySet, QuerySetModification, RemoveQuery


@dataclass(slots=True)
class LocalQuery:
    query_id: int
    token: str
    path: str
    #: The arguments object in Convex JSON (sent as ``[args]``).
    args: dict[str, Any]
    journal: str | None = None
    #: How many subscriptions share it; removed from the query set at 0.
    count: int = 1

    def add(self) -> AddQuery:
        return AddQuery(self.query_id, self.path, [self.args], self.journal, None)


class LocalState:
    """The query set and its versions on the current socket."""

    def __init__(self) -> None:
        self.queries: dict[int, LocalQuery] = {}
        self.by_token: dict[str, LocalQuery] = {}
        self.next_query_id = 0
        #: The last ``newVersion`` sent on this socket.
        self.query_set_version = 0
        self._pending: list[QuerySetModification] = []

    def subscribe(self, path: str, args: dict[str, Any]) -> tuple[LocalQuery, bool]:
        """The query for ``(path, args)``, and whether it is new to the query set."""
        token = query_token(path, args)
        query = self.by_token.get(token)
        if query is not None:
            query.count += 1
            return query, False
        query = LocalQuery(self.next_query_id, token, path, args)
        self.next_query_id += 1
        self.queries[query.query_id] = query
        self.by_token[token] = query
        self._pending.append(query.add())
        return query, True

    def unsubscribe(self, query_id: int) -> bool:
        """Drop one subscriber of a query; True when that removed it from the query set."""
        query = self.queries.get(query_id)
        if query is None:
            return False
        query.count -= 1
        if query.count > 0:
            return False
        del self.queries[query_id]
        del self.by_token[query.token]
        pending = self._pending
        for i, change in enumerate(pending):
            if isinstance(change, AddQuery) and change.query_id == query_id:
                del pending[i]  # never sent: nothing to remove on the server
                return True
        pending.append(RemoveQuery(query_id))
        return True

    def lookup(self, path: str, args: dict[str, Any]) -> LocalQuery | None:
        return self.by_token.get(query_token(path, args))

    def save_journal(self, query_id: int, journal: str | None) -> None:
        query = self.queries.get(query_id)
        if query is not None:
            query.journal = journal

    @property
    def has_pending(self) -> bool:
        return bool(self._pending)

    def take_modify_query_set(self) -> ModifyQuerySet | None:
        """The changes not sent yet, as the next ModifyQuerySet (None if there are none)."""
        if not self._pending:
            return None
        base = self.query_set_version
        self.query_set_version += 1
        message = ModifyQuerySet(base, base + 1, tuple(self._pending))
        self._pending = []
        return message

    def restart(self) -> ModifyQuerySet:
        """For a new socket: the whole query set as ``ModifyQuerySet{0→1}`` (always sent,
        even empty, so the first Transition answers it)."""
        self._pending = []
        self.query_set_version = 1
        adds = tuple(query.add() for query in self.queries.values())
        return ModifyQuerySet(0, 1, adds)

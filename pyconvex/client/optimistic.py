"""Optimistic updates: a mutation's guess of its effect, shown at once in local query results.

``await client.mutation(api.messages.send, args, optimistic_update=add_message)`` calls
``add_message(local_store, args)`` before the mutation is sent; it reads and rewrites the
results of queries the client subscribes to::

    def add_message(store: LocalStore, args: dict[str, Any]) -> None:
        current = store.get_query(api.messages.list, {"channel": args["channel"]})
        if current is not None:
            store.set_query(api.messages.list, {"channel": args["channel"]},
                            [*current, {"_id": "pending", "body": args["body"]}])

The visible results are the server's with every pending update replayed on top, in the order
the mutations were made. An update is dropped in the same step that applies the server's
Transition reaching its mutation's commit ts (the real document replaces the guess at once),
or when the mutation fails (the guess is rolled back).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Mapping
from typing import Any

from pyconvex.client.function_names import function_path, wire_args
from pyconvex.client.local_state import LocalState
from pyconvex.client.results import QueryResult
from pyconvex.values import decode_value, encode_value, to_value

_log = logging.getLogger("pyconvex.client")

#: ``fn(local_store, args)``: edits local query results.
OptimisticUpdate = Callable[["LocalStore", Any], None]


class LocalStore:
    """The local query results an optimistic update reads and rewrites.

    Values are copies: change them freely, then :meth:`set_query` the result. Queries the
    client does not subscribe to read as None and ignore :meth:`set_query`.
    """

    def __init__(self, local: LocalState, results: dict[int, QueryResult]) -> None:
        self._local = local
        self._results = results
        #: query id -> the result an update set
        self.changed: dict[int, QueryResult] = {}

    def get_query(self, fn: object, args: Mapping[str, Any] | None = None) -> Any:
        """The current result of ``fn(args)`` (None while it has none, or when it failed)."""
        query = self._local.lookup(function_path(fn), wire_args(args))
        if query is None:
            return None
        result = self._results.get(query.query_id)
        if result is None or result.error is not None:
            return None
        return copy.deepcopy(result.value)

    def set_query(self, fn: object, args: Mapping[str, Any] | None, value: Any) -> None:
        """Show ``value`` as the result of ``fn(args)`` until the mutation is reflected."""
        query = self._local.lookup(function_path(fn), wire_args(args))
        if query is None:
            return
        canonical = to_value(value, path=".value")
        result = QueryResult.of_value(canonical, encode_value(canonical))
        self._results[query.query_id] = result
        self.changed[query.query_id] = result

    def get_all_queries(self, fn: object) -> list[tuple[dict[str, Any], Any]]:
        """``(args, value)`` of every subscribed query of ``fn`` (value None while loading),
        e.g. each loaded page of a paginated query."""
        path = function_path(fn)
        found: list[tuple[dict[str, Any], Any]] = []
        for query in self._local.queries.values():
            if query.path != path:
                continue
            result = self._results.get(query.query_id)
            value = None if result is None or result.error else copy.deepcopy(result.value)
            args = decode_value(query.args)
            assert isinstance(args, dict)
            found.append((args, value))
        return found


class OptimisticLayer:
    """The pending optimistic updates, and the results they make visible."""

    def __init__(self) -> None:
        self._updates: dict[int, tuple[OptimisticUpdate, Any]] = {}

    def __bool__(self) -> bool:
        return bool(self._updates)

    def add(
        self,
        request_id: int,
        update: OptimisticUpdate,
        args: Any,
        local: LocalState,
        visible: dict[int, QueryResult],
    ) -> dict[int, QueryResult]:
        """Run a new update over the visible results (its exceptions reach the caller) and
        keep it; returns the results it changed."""
        store = LocalStore(local, dict(visible))
        update(store, args)
        self._updates[request_id] = (update, args)
        return store.changed

    def drop(self, request_ids: list[int]) -> bool:
        """Forget the updates of these requests; True if there were any."""
        dropped = False
        for request_id in request_ids:
            dropped = self._updates.pop(request_id, None) is not None or dropped
        return dropped

    def replay(self, local: LocalState, server: dict[int, QueryResult]) -> dict[int, QueryResult]:
        """The server's results with every pending update applied, in order. An update that
        raises now is skipped (logged): it already ran once without error."""
        if not self._updates:
            return server
        store = LocalStore(local, dict(server))
        for request_id, (update, args) in self._updates.items():
            try:
                update(store, args)
            except Exception:
                _log.exception("optimistic update of request %d failed; skipped", request_id)
        return store._results

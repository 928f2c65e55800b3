"""pyconvex's Python client, for pyconvex and any Convex deployment (the protocol is Convex's).

:class:`AsyncConvexClient` (asyncio) and :class:`ConvexClient` (blocking, thread-safe) keep one
WebSocket to the deployment::

    from pyconvex.client import ConvexClient

    client = ConvexClient("http://127.0.0.1:3210")
    client.mutation("messages:send", {"body": "hi"})
    for messages in client.subscribe("messages:list", {}):
        print(messages)

What they promise, as Convex's own clients do:

* All subscriptions of one client move together: each server Transition is applied to all of
  them at once, never half.
* A mutation returns only once its writes are visible to the client's subscriptions (and to
  its next ``query``).
* Mutations are pipelined on the socket; after a reconnect (with backoff and jitter) the
  queries are subscribed again and unanswered mutations re-sent under the same session, so
  each applies exactly once. A deployment that is down is retried, not an error.
* ``optimistic_update=`` shows a mutation's effect before the server answers; ``paginated``
  follows Convex's pagination protocol; with ``convex/_generated/api.py`` calls are typed.

Also here: :mod:`~pyconvex.client.admin` (the admin API the command line uses) and
:mod:`~pyconvex.client.errors`. May import only ``pyconvex.values``, ``pyconvex.server``,
``pyconvex.protocol`` and ``pyconvex.project``; importing it loads no engine, and the client
classes (and websockets) load when first used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyconvex.client.async_client import AsyncConvexClient
    from pyconvex.client.blocking_client import ConvexClient
    from pyconvex.client.engine import ConnectionState
    from pyconvex.client.errors import (
        AuthenticationError,
        ClientClosedError,
        ClientError,
        ConnectionLostError,
        ConvexError,
        FunctionError,
        NotConvexDeploymentError,
    )
    from pyconvex.client.optimistic import LocalStore
    from pyconvex.client.pagination import (
        BlockingPaginatedSubscription,
        PaginatedResult,
        PaginatedSubscription,
    )
    from pyconvex.client.results import QueryResult
    from pyconvex.client.subscription import BlockingSubscription, Snapshot, Subscription

_EXPORTS = {
    "AsyncConvexClient": "async_client",
    "ConvexClient": "blocking_client",
    "ConnectionState": "engine",
    "AuthenticationError": "errors",
    "ClientClosedError": "errors",
    "ClientError": "errors",
    "ConnectionLostError": "errors",
    "ConvexError": "errors",
    "FunctionError": "errors",
    "NotConvexDeploymentError": "errors",
    "LocalStore": "optimistic",
    "BlockingPaginatedSubscription": "pagination",
    "PaginatedResult": "pagination",
    "PaginatedSubscription": "pagination",
    "QueryResult": "results",
    "BlockingSubscription": "subscription",
    "Snapshot": "subscription",
    "Subscription": "subscription",
}

__all__ = [
    "AsyncConvexClient",
    "AuthenticationError",
    "BlockingPaginatedSubscription",
    "BlockingSubscription",
    "ClientClosedError",
    "ClientError",
    "ConnectionLostError",
    "ConnectionState",
    "ConvexClient",
    "ConvexError",
    "FunctionError",
    "LocalStore",
    "NotConvexDeploymentError",
    "PaginatedResult",
    "PaginatedSubscription",
    "QueryResult",
    "Snapshot",
    "Subscription",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pyconvex.client' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"pyconvex.client.{module}"), name)
    globals()[name] = value
    return value

"""The ``ctx`` objects handed to handlers (query, mutation, action)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pyconvex.errors import PyconvexError
from pyconvex.runtime.query.database_impl import DatabaseReader, DatabaseWriter


class Auth:
    """``ctx.auth``: who is calling. Authentication providers arrive with the auth issue."""

    __slots__ = ("_identity",)

    def __init__(self, identity: Any = None) -> None:
        self._identity = identity

    async def get_user_identity(self) -> Any:
        """The caller's UserIdentity, or None when unauthenticated."""
        return self._identity


class _NotYet:
    """Placeholder for ctx members that arrive in a later pyconvex version."""

    __slots__ = ("_what",)

    def __init__(self, what: str) -> None:
        self._what = what

    def __getattr__(self, name: str) -> Any:
        raise PyconvexError(
            f"ctx.{self._what}.{name} is not available in this version of pyconvex yet "
            f"({self._what} arrives with its own issue)."
        )


_STORAGE = _NotYet("storage")
_SCHEDULER = _NotYet("scheduler")


class QueryCtx:
    """``ctx`` in a query: ``db`` (reader), ``auth``, ``storage``."""

    __slots__ = ("auth", "db", "storage")

    def __init__(self, db: DatabaseReader, auth: Auth) -> None:
        self.db = db
        self.auth = auth
        self.storage: Any = _STORAGE


class MutationCtx:
    """``ctx`` in a mutation: ``db`` (writer), ``auth``, ``storage``, ``scheduler``."""

    __slots__ = ("auth", "db", "scheduler", "storage")

    def __init__(self, db: DatabaseWriter, auth: Auth) -> None:
        self.db = db
        self.auth = auth
        self.storage: Any = _STORAGE
        self.scheduler: Any = _SCHEDULER


Runner = Callable[[Any, "dict[str, Any] | None"], Awaitable[Any]]


class ActionCtx:
    """``ctx`` in an action: ``run_query``, ``run_mutation``, ``run_action``, ``auth``.

    Functions are named by a ``"module:function"`` string or a generated reference.
    """

    __slots__ = ("_run_action", "_run_mutation", "_run_query", "auth", "scheduler", "storage")

    def __init__(
        self, auth: Auth, run_query: Runner, run_mutation: Runner, run_action: Runner
    ) -> None:
        self.auth = auth
        self._run_query = run_query
        self._run_mutation = run_mutation
        self._run_action = run_action
        self.storage: Any = _STORAGE
        self.scheduler: Any = _SCHEDULER

    async def run_query(self, fn: Any, args: dict[str, Any] | None = None) -> Any:
        """Run a query (public or internal) in its own transaction and return its value."""
        return await self._run_query(fn, args)

    async def run_mutation(self, fn: Any, args: dict[str, Any] | None = None) -> Any:
        """Run a mutation in its own transaction; returns once it is durable."""
        return await self._run_mutation(fn, args)

    async def run_action(self, fn: Any, args: dict[str, Any] | None = None) -> Any:
        """Run another action."""
        return await self._run_action(fn, args)

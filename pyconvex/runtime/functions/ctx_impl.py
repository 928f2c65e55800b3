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


class _Unavailable:
    """A ctx member the deployment was opened without (e.g. a stand-in in tests)."""

    __slots__ = ("_what",)

    def __init__(self, what: str) -> None:
        self._what = what

    def __getattr__(self, name: str) -> Any:
        raise PyconvexError(f"ctx.{self._what}.{name} is not available in this deployment.")


_STORAGE = _Unavailable("storage")
_SCHEDULER = _Unavailable("scheduler")


class QueryCtx:
    """``ctx`` in a query: ``db`` (reader), ``auth``, ``storage`` (reader)."""

    __slots__ = ("auth", "db", "storage")

    def __init__(self, db: DatabaseReader, auth: Auth, storage: Any = None) -> None:
        self.db = db
        self.auth = auth
        self.storage: Any = _STORAGE if storage is None else storage


class MutationCtx:
    """``ctx`` in a mutation: ``db`` (writer), ``auth``, ``storage``, ``scheduler``."""

    __slots__ = ("auth", "db", "scheduler", "storage")

    def __init__(
        self, db: DatabaseWriter, auth: Auth, storage: Any = None, scheduler: Any = None
    ) -> None:
        self.db = db
        self.auth = auth
        self.storage: Any = _STORAGE if storage is None else storage
        self.scheduler: Any = _SCHEDULER if scheduler is None else scheduler


Runner = Callable[[Any, "dict[str, Any] | None"], Awaitable[Any]]


class ActionCtx:
    """``ctx`` in an action: ``run_query``, ``run_mutation``, ``run_action``, ``auth``,
    ``storage``, ``scheduler`` and ``run_blocking``.

    Functions are named by a ``"module:function"`` string or a generated reference.
    """

    __slots__ = (
        "_run_action",
        "_run_blocking",
        "_run_mutation",
        "_run_query",
        "auth",
        "scheduler",
        "storage",
    )

    def __init__(
        self,
        auth: Auth,
        run_query: Runner,
        run_mutation: Runner,
        run_action: Runner,
        *,
        storage: Any = None,
        scheduler: Any = None,
        run_blocking: Callable[..., Awaitable[Any]] | None = None,
    ) -> None:
        self.auth = auth
        self._run_query = run_query
        self._run_mutation = run_mutation
        self._run_action = run_action
        self._run_blocking = run_blocking
        self.storage: Any = _STORAGE if storage is None else storage
        self.scheduler: Any = _SCHEDULER if scheduler is None else scheduler

    async def run_query(self, fn: Any, args: dict[str, Any] | None = None) -> Any:
        """Run a query (public or internal) in its own transaction and return its value."""
        return await self._run_query(fn, args)

    async def run_mutation(self, fn: Any, args: dict[str, Any] | None = None) -> Any:
        """Run a mutation in its own transaction; returns once it is durable."""
        return await self._run_mutation(fn, args)

    async def run_action(self, fn: Any, args: dict[str, Any] | None = None) -> Any:
        """Run another action."""
        return await self._run_action(fn, args)

    async def run_blocking(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Run blocking code (``time.sleep``, ``requests``, file work) on a worker thread, so
        the server keeps serving meanwhile::

            page = await ctx.run_blocking(requests.get, "https://example.com", timeout=10)
        """
        if self._run_blocking is None:
            return fn(*args, **kwargs)
        return await self._run_blocking(fn, *args, **kwargs)

    async def vector_search(self, *args: Any, **kwargs: Any) -> Any:
        """Vector search over a table's vector index."""
        raise PyconvexError(
            "pyconvex does not support vector search (ctx.vector_search): vector indexes "
            "cannot be defined in a pyconvex schema."
        )

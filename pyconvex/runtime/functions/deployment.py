"""A running deployment: functions, schema, the store, and the group committer.

This is the engine's face to the server (and to in-process tests)::

    dep = await Deployment.open(Path("convex"), Path(".pyconvex"))
    result = await dep.run_mutation("messages:send", {"body": "hi"})
    page = dep.run_query("messages:list", {})
    await dep.close()

Queries run synchronously at the durable timestamp; mutations run one at a time, are applied
to memory at a fresh commit timestamp and resolve once their group-committed batch is durable.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pyconvex.errors import InvalidValueError, PyconvexError, StorageError
from pyconvex.runtime.auth.admin_key import ensure_admin_key
from pyconvex.runtime.auth.providers import Provider
from pyconvex.runtime.auth.tokens import TokenVerifier
from pyconvex.runtime.functions import sandbox
from pyconvex.runtime.functions.action_runner import ActionRunner
from pyconvex.runtime.functions.call_errors import (
    ArgsError,
    ReturnsError,
    args_error,
    returns_error,
    uncaught,
)
from pyconvex.runtime.functions.cron_runner import CronRunner
from pyconvex.runtime.functions.ctx_impl import Auth, MutationCtx, QueryCtx
from pyconvex.runtime.functions.env_vars import ENV_SOURCE, set_builtin_variables
from pyconvex.runtime.functions.file_storage import (
    DEFAULT_ORIGIN,
    DEFAULT_SITE_ORIGIN,
    ActionStorage,
    FileStorage,
    StorageReader,
    StorageWriter,
)
from pyconvex.runtime.functions.function_path import function_ref_path as function_ref_path
from pyconvex.runtime.functions.function_path import normalize_path
from pyconvex.runtime.functions.handler_loop import drive
from pyconvex.runtime.functions.job_runner import JobRunner
from pyconvex.runtime.functions.loader import LoadedFunctions, load_functions
from pyconvex.runtime.functions.log_history import LogHistory
from pyconvex.runtime.functions.results import (
    AppliedMutation,
    FunctionFailure,
    FunctionKind,
    FunctionResult,
)
from pyconvex.runtime.functions.scheduler import TransactionScheduler
from pyconvex.runtime.functions.session_results import SessionResults
from pyconvex.runtime.functions.system_functions import SYSTEM_FUNCTIONS
from pyconvex.runtime.query.database_impl import DatabaseReader, DatabaseWriter, IdResolver
from pyconvex.runtime.query.transaction import Limits, Transaction
from pyconvex.runtime.store.blob_store import LocalBlobStore
from pyconvex.runtime.store.committer import Committer, PendingCommit
from pyconvex.runtime.store.duckdb_log import DB_FILE_DEFAULT
from pyconvex.runtime.store.memory import Store, UndoRecord
from pyconvex.runtime.store.open_persistence import open_persistence
from pyconvex.runtime.store.persistence import Persistence
from pyconvex.runtime.store.read_set import CommitListener, WriteSet
from pyconvex.runtime.store.schema_state import SchemaState
from pyconvex.server.functions import FunctionDefinition
from pyconvex.values import dumps_value, loads_value, to_value

DB_FILE = DB_FILE_DEFAULT


class Deployment:
    """The engine: see the module docstring."""

    def __init__(
        self,
        loaded: LoadedFunctions,
        store: Store,
        committer: Committer,
        limits: Limits,
    ) -> None:
        self.loaded = loaded
        self.functions = loaded.functions
        self.schema = SchemaState(loaded.schema)
        self.store = store
        self.committer, self.write_gate = committer, committer.gate  # write_gate: imports
        self.persistence: Persistence = committer.persistence  # where commits become durable
        self.limits = limits
        self.session_results = SessionResults()
        #: The newest commit handed to the committer: ``(ts, future resolved when durable)``.
        self._last_pending: tuple[int, asyncio.Future[int]] | None = None
        self.executions = 0
        #: Recent executions for `pyconvex logs`; the admin key (None: in-memory deployment).
        self.log_history = LogHistory()
        self.admin_key: str | None = None
        self.token_verifier = TokenVerifier(loaded.auth_providers)  # auth_config.py's
        self.extra_providers: list[Provider] = []  # besides auth_config.py's: trust()
        self._normalized: dict[str, str] = {}
        self.actions = ActionRunner(self)
        #: Runs ``_scheduled_functions`` when due (started by :meth:`open`).
        self.jobs = JobRunner(self)
        #: Fires the cron jobs of ``crons.py`` (started by :meth:`open`).
        self.crons = CronRunner(self)
        #: ``_storage`` and the blobs (opened by :meth:`open`).
        self.storage = FileStorage(self)
        self.actions.storage = lambda: ActionStorage(self.storage)
        #: Where HTTP actions are served (set when the server listens; see :meth:`set_urls`).
        self.site_url = DEFAULT_SITE_ORIGIN
        #: Production (``pyconvex serve``): clients get no log lines, and a failed call's error
        #: only as ``[Request ID: <id>] Server Error`` (``results.redacted``); the log has it all.
        self.redact_for_clients = False
        #: What takes ``pyconvex deploy``'s code (set by ``dev`` and ``serve``: a
        #: ``pyconvex.runtime.net.admin_routes.CodeDeployer``); None: deploys are refused.
        self.deployer: Any = None

    # -- lifecycle -----------------------------------------------------------------------
    @classmethod
    async def open(
        cls,
        functions_dir: Path | None,
        data_dir: Path | None,
        *,
        loaded: LoadedFunctions | None = None,
        limits: Limits | None = None,
        persistence: Persistence | None = None,
    ) -> Deployment:
        """Load the functions, rebuild memory from DuckDB (``data_dir`` None: in memory), or
        from ``persistence`` when given (any implementation of ``store/persistence.py``)."""
        sandbox.install()
        if loaded is None:
            if functions_dir is None:
                raise PyconvexError("Deployment.open() needs functions_dir or loaded functions.")
            loaded = load_functions(functions_dir)
        path = None if data_dir is None else data_dir / DB_FILE
        if persistence is None:
            persistence = open_persistence(path)
        store = Store()
        schema = SchemaState(loaded.schema)
        paths = schema.index_paths()
        try:
            async with persistence.load(paths) as state:
                for name, number in state.tables.items():
                    store.create_table(name, number)
                for table in store.tables.values():
                    store.set_indexes(table, schema.index_specs(table.name), build=False)
                store.load(state.documents, paths)
            store.head_ts = store.durable_ts = state.max_ts
            committer = Committer(store, persistence)
            dep = cls(loaded, store, committer, limits or Limits())
            if data_dir is not None:
                dep.admin_key = ensure_admin_key(data_dir)
            dep.session_results = SessionResults(state.session_requests)
            persistence.set_view_columns(dep.schema.view_columns())
            await persistence.create_views(dep._view_tables())
        except BaseException:
            with contextlib.suppress(Exception):
                await persistence.close()
            raise
        dep.jobs.start(ready=bool(loaded.functions))
        dep.crons.start(ready=bool(loaded.functions))
        storage_dir = None if data_dir is None else data_dir / "storage"
        await dep.storage.start(LocalBlobStore(storage_dir), storage_dir)
        dep.set_urls(DEFAULT_ORIGIN, DEFAULT_SITE_ORIGIN)
        return dep

    def _view_tables(self) -> list[tuple[str, int, dict[str, str]]]:
        cols = self.schema.view_columns()
        return [
            (t.name, t.number, cols.get(t.name, {}))
            for t in self.store.tables.values()
            if not t.is_system
        ]

    async def close(self) -> None:
        """Flush pending commits and close the database."""
        await self.crons.close()
        await self.jobs.close()
        self.actions.close()
        await self.committer.close()
        await self.storage.close()
        await self.persistence.close()

    def set_urls(self, cloud_url: str, site_url: str) -> None:
        """Where clients reach this deployment (the API port) and its HTTP actions (the site
        port): upload and file URLs start with ``cloud_url``, and functions read both as
        ``env["CONVEX_CLOUD_URL"]`` / ``env["CONVEX_SITE_URL"]``."""
        self.storage.origin = cloud_url
        self.site_url = site_url
        set_builtin_variables(
            self.store, {"CONVEX_CLOUD_URL": cloud_url, "CONVEX_SITE_URL": site_url}
        )

    async def sql(self, query: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        """Run SQL on the DuckDB file (after every commit made so far), e.g. over the views::

        rows = await dep.sql("SELECT body FROM messages WHERE channel = ?", ["general"])
        """
        return await self.persistence.sql(query, params)

    async def checkpoint(self) -> int:
        """Bring the DuckDB file up to every durable commit and return the timestamp it holds
        (a consistent snapshot of the file, e.g. for tools that read it)."""
        return await self.persistence.checkpoint()

    @property
    def latest_ts(self) -> int:
        """The newest durable commit timestamp: what queries read."""
        return self.store.durable_ts

    def add_commit_listener(
        self, listener: CommitListener, *, prepare: bool = False, first: bool = False
    ) -> Callable[[], None]:
        """Call ``listener(latest_ts, commits)`` after every durable batch; returns remove().

        ``prepare=True``: call it instead once a batch is handed to persistence with no other in
        flight: not durable yet (it may fail), ``run_query(..., speculative=True)`` reads it;
        the same ``commits`` list reaches the durable listeners if it becomes durable.

        ``first=True``: call it before the listeners added without it (what clients wait for,
        the subscriptions' updates, goes out before the scheduler's and the other bookkeeping;
        the listeners do not depend on one another's order)."""
        listeners = self.committer.preparers if prepare else self.committer.listeners
        if first:
            listeners.insert(0, listener)
        else:
            listeners.append(listener)

        def remove() -> None:
            if listener in listeners:
                listeners.remove(listener)

        return remove

    def answer_when_durable(self, ts: int, callback: Callable[[], None]) -> None:
        """Call ``callback()`` in the turn that makes ``ts`` durable, after the commit
        listeners (``Committer.answer_when_durable``): how a socket answers its mutations."""
        self.committer.answer_when_durable(ts, callback)

    def trust(self, provider: Provider) -> None:
        """Accept ``provider``'s tokens too (``pyconvex dev``'s own sign-in page)."""
        self.extra_providers.append(provider)
        self.token_verifier = TokenVerifier([*self.loaded.auth_providers, *self.extra_providers])

    # -- pushes (schema_push.py) -------------------------------------------------------------
    def swap(self, loaded: LoadedFunctions, schema: SchemaState) -> None:
        """Serve ``loaded`` under ``schema`` from the next call on (one synchronous step, so no
        call sees half of it). The store's indexes must already match ``schema``."""
        self.loaded = loaded
        self.functions = loaded.functions
        self.schema = schema
        self.persistence.set_view_columns(schema.view_columns())
        providers = [*loaded.auth_providers, *self.extra_providers]
        if providers != self.token_verifier.providers:
            self.token_verifier = TokenVerifier(providers)
        self.jobs.functions_changed()
        self.crons.functions_changed()

    async def create_tables(self, names: list[str]) -> None:
        """Create empty tables, with their schema indexes, as one durable commit."""
        store = self.store
        ts = store.next_ts()
        undo = UndoRecord(ts)
        new_tables = []
        for name in names:
            if name in store.tables:
                continue
            table = store.create_table(name)
            store.set_indexes(table, self.schema.index_specs(name))
            undo.created_tables.append(name)
            new_tables.append((table.number, name))
        if not new_tables:
            return
        durable = self.committer.submit(PendingCommit(ts, undo, WriteSet([]), [], new_tables))
        self._last_pending = (ts, durable)
        await asyncio.shield(durable)

    async def refresh_views(self) -> None:
        """Re-create the per-table SQL views (after the schema's columns changed)."""
        await self.persistence.create_views(self._view_tables())

    # -- resolution ------------------------------------------------------------------------
    def function_kind(self, path: str, *, public_only: bool = False) -> FunctionKind | None:
        """The kind of the function at ``path``, None if there is none (``public_only``: nor
        an internal one, which a client must not learn exists)."""
        try:
            fn = self.functions.get(normalize_path(path))
        except ValueError:
            return None
        if fn is None or (public_only and fn.visibility == "internal"):
            return None
        return fn.kind

    def _resolve(
        self, path: str, kind: str, allow_internal: bool
    ) -> FunctionDefinition | FunctionFailure:
        norm = self._normalized.get(path)
        if norm is None:
            try:
                norm = normalize_path(path)
            except ValueError as e:
                return FunctionFailure.server_error(str(e))
            if len(self._normalized) < 10_000:
                self._normalized[path] = norm
        fn = self.functions.get(norm) or SYSTEM_FUNCTIONS.get(norm)
        if fn is None or (fn.visibility == "internal" and not allow_internal):
            public = [
                p for p, f in self.functions.items() if allow_internal or f.visibility == "public"
            ]
            close = difflib.get_close_matches(norm, public, n=3, cutoff=0.5)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            what = "public function" if not allow_internal else "function"
            failure = FunctionFailure.server_error(f"Could not find {what} for {norm!r}.{hint}")
            if fn is not None:
                # The client is answered exactly as for a function that does not exist (it
                # must not learn what is internal); the developer's console says more.
                failure.traceback = failure.full_traceback = (
                    f"{failure.message}({norm} is an internal {fn.kind}: a client cannot call "
                    "it; call it from another function, the scheduler, or with the admin key.)\n"
                )
            return failure
        if fn.kind != kind:
            return FunctionFailure.server_error(
                f"Trying to execute {norm} as {kind.capitalize()}, but it is defined as "
                f"{fn.kind.capitalize()}."
            )
        return fn

    def _args(self, fn: FunctionDefinition, args: Any, tx: Transaction | None) -> dict[str, Any]:
        if args is None:
            args = {}
        if not isinstance(args, dict):
            raise args_error(fn, None, args)
        if fn.args is None:
            return args
        try:
            out = fn.args.validate(args, "", IdResolver(tx) if tx is not None else None)
        except ValueError as e:
            raise args_error(fn, e, args) from None
        assert isinstance(out, dict)
        return out

    def _result_value(self, fn: FunctionDefinition, value: Any) -> Any:
        if fn.returns is not None:
            try:
                value = fn.returns.validate(value, "")
            except ValueError as e:
                raise returns_error(fn, e) from None
        try:
            return to_value(value)
        except InvalidValueError as e:
            raise ReturnsError(
                f"{fn.path} returned a value that is not a Convex value: {e}. What a function "
                "returns goes to the client: return None, bool, int/float, Int64, str, bytes, or "
                "lists and dicts of them."
            ) from None

    def _unresolved(self, kind: str, path: str, failure: FunctionFailure) -> FunctionResult:
        """A call of a function that does not exist (or of another kind): in the log too, so
        the developer sees what the client asked for."""
        self.log_history.record(kind, path, sandbox.real_time_ns(), failure, [])
        return FunctionResult(failure=failure)

    def _failure(self, e: BaseException, where: str) -> FunctionFailure:
        """What a call that raised ``e`` reports, in Convex's words (``call_errors.py``)."""
        if isinstance(e, ArgsError | ReturnsError):
            return FunctionFailure.server_error(str(e))
        return uncaught(e, self.loaded.functions_dir)

    # -- queries ---------------------------------------------------------------------------
    def run_query(
        self,
        path: str,
        args: dict[str, Any] | None = None,
        *,
        identity: Any = None,
        ts: int | None = None,
        journal: str | None = None,
        allow_internal: bool = False,
        speculative: bool = False,
    ) -> FunctionResult:
        """Run a query at ``ts`` (default: the latest durable timestamp; ``speculative``: up to
        the latest commit applied to memory, durable or not — for results held back until it
        is)."""
        fn = self._resolve(path, "query", allow_internal)
        if isinstance(fn, FunctionFailure):
            return self._unresolved("query", path, fn)
        store = self.store
        snapshot = store.durable_ts if ts is None else ts
        newest = store.head_ts if speculative else store.durable_ts
        if snapshot < store.gc_horizon or snapshot > newest:
            return FunctionResult(
                failure=FunctionFailure(
                    f"Timestamp {snapshot} is outside the retained snapshots "
                    f"[{store.gc_horizon}, {store.durable_ts}]; ask again with a recent timestamp."
                )
            )
        where = f"query {fn.path}"
        tx = Transaction(
            store, self.schema, where, snapshot, limits=self.limits, journal_in=journal
        )
        scope = sandbox.ExecutionScope(
            sandbox.real_time_ns(), zlib.crc32(fn.path.encode()) ^ snapshot, where=where
        )
        self.executions += 1
        token = sandbox.enter(scope)
        env_token = ENV_SOURCE.set(tx)
        try:
            handler_args = self._args(fn, args, tx)
            ctx = QueryCtx(DatabaseReader(tx), Auth(identity), StorageReader(tx, self.storage))
            value = self._result_value(fn, drive(fn.handler(ctx, **handler_args), where))
            failure = None
        except Exception as e:
            failure = self._failure(e, where)
            value = None
        finally:
            ENV_SOURCE.reset(env_token)
            sandbox.exit(scope, token)
        self.log_history.record("query", fn.path, scope.now_ns, failure, scope.log_lines)
        return FunctionResult(value, failure, scope.log_lines, snapshot, tx.reads, tx.journal_out)

    # -- mutations -------------------------------------------------------------------------
    async def run_mutation(
        self,
        path: str,
        args: dict[str, Any] | None = None,
        *,
        identity: Any = None,
        allow_internal: bool = False,
        idempotency_key: tuple[str, int] | None = None,
        in_transaction: Callable[[Transaction], None] | None = None,
    ) -> FunctionResult:
        """Run a mutation; resolves once its writes are durable (``result.ts``: commit ts). It
        waits while an import holds writes. ``in_transaction(tx)`` runs after the handler, in
        its transaction: what it writes commits with the mutation (the scheduler uses it)."""
        if self.write_gate.held:
            await self.write_gate.wait_open()
        applied = self.apply_mutation(
            path,
            args,
            identity=identity,
            allow_internal=allow_internal,
            idempotency_key=idempotency_key,
            in_transaction=in_transaction,
        )
        return await applied.outcome()

    def apply_mutation(
        self,
        path: str,
        args: dict[str, Any] | None = None,
        *,
        identity: Any = None,
        allow_internal: bool = False,
        idempotency_key: tuple[str, int] | None = None,
        in_transaction: Callable[[Transaction], None] | None = None,
    ) -> AppliedMutation:
        """Run a mutation now and apply its writes to memory; report it once it is durable
        (:meth:`AppliedMutation.outcome`).

        The next mutation may run at once, before this one is durable, and read its writes:
        mutations pipeline. So everything run after a commit depends on it — its own commit
        is in a later batch, or it waits for that commit (``wait_ts``) — and if that batch
        fails, the committer takes every later commit out of memory and they all fail.
        """
        if idempotency_key is not None:
            seen = self.session_results.get(idempotency_key)
            if seen is not None:  # a client re-sent it (reconnect): answer as the first time
                ts, encoded = seen
                value = FunctionResult(loads_value(encoded), ts=ts)
                if ts <= self.store.durable_ts:
                    return AppliedMutation(value)
                return AppliedMutation(value, *self._pending_commit())
        fn = self._resolve(path, "mutation", allow_internal)
        if isinstance(fn, FunctionFailure):
            return AppliedMutation(self._unresolved("mutation", path, fn))
        store = self.store
        ts = store.next_ts()
        undo = UndoRecord(ts)
        where = f"mutation {fn.path}"
        tx = Transaction(store, self.schema, where, None, undo, self.limits)
        scope = sandbox.ExecutionScope(sandbox.real_time_ns(), ts, where=where)
        self.executions += 1
        token = sandbox.enter(scope)
        env_token = ENV_SOURCE.set(tx)
        try:
            handler_args = self._args(fn, args, tx)
            ctx = MutationCtx(
                DatabaseWriter(tx),
                Auth(identity),
                StorageWriter(tx, self.storage),
                TransactionScheduler(tx, self.function_kind),
            )
            value = self._result_value(fn, drive(fn.handler(ctx, **handler_args), where))
            if in_transaction is not None:
                in_transaction(tx)
        except Exception as e:
            store.undo(undo)
            failure = self._failure(e, where)
            self.log_history.record("mutation", fn.path, scope.now_ns, failure, scope.log_lines)
            # It may have failed because of what it read: report it after what it read.
            return AppliedMutation(
                FunctionResult(failure=failure, log_lines=scope.log_lines), *self._pending_commit()
            )
        finally:
            ENV_SOURCE.reset(env_token)
            sandbox.exit(scope, token)
        if not undo.touched and not undo.created_tables:
            # Read-only: it may have read commits that are not durable yet.
            wait_ts, durable = self._pending_commit()
            result = FunctionResult(value, None, scope.log_lines, max(store.durable_ts, wait_ts))
            return self._reported(AppliedMutation(result, wait_ts, durable), fn.path, scope, None)
        encoded = dumps_value(value) if idempotency_key is not None else ""
        if idempotency_key is not None:
            self.session_results[idempotency_key] = (ts, encoded)
        pending = PendingCommit(
            ts,
            undo,
            WriteSet(store.write_entries(undo)),
            tx.document_writes(),
            tx.new_tables,
            None if idempotency_key is None else (*idempotency_key, encoded),
        )
        result = FunctionResult(value, None, scope.log_lines, ts)
        try:
            durable = self.committer.submit(pending)
        except StorageError as e:
            store.undo(undo)
            durable = asyncio.get_running_loop().create_future()
            durable.set_exception(e)
        self._last_pending = (ts, durable)
        return self._reported(AppliedMutation(result, ts, durable), fn.path, scope, idempotency_key)

    def _pending_commit(self) -> tuple[int, asyncio.Future[int] | None]:
        """The newest commit not yet durable, as ``(ts, future)``, or ``(0, None)``."""
        last = self._last_pending
        if last is None or last[1].done():
            return 0, None
        return last

    def _reported(
        self,
        applied: AppliedMutation,
        path: str,
        scope: sandbox.ExecutionScope,
        idempotency_key: tuple[str, int] | None,
    ) -> AppliedMutation:
        """Record the call in the log history once its outcome is known; forget its result if
        its batch failed (a re-send must run it again)."""

        def done(_: object = None) -> None:
            result = applied.settle()
            if result.failure is not None and idempotency_key is not None:
                self.session_results.pop(idempotency_key, None)
            self.log_history.record("mutation", path, scope.now_ns, result.failure, scope.log_lines)

        if applied.durable is None:
            done()
        else:
            applied.durable.add_done_callback(done)
        return applied

    # -- actions ---------------------------------------------------------------------------
    async def run_action(
        self,
        path: str,
        args: dict[str, Any] | None = None,
        *,
        identity: Any = None,
        allow_internal: bool = False,
    ) -> FunctionResult:
        """Run an action: a plain coroutine that may do I/O and call other functions
        (``action_runner``: time limit, concurrency cap)."""
        fn = self._resolve(path, "action", allow_internal)
        if isinstance(fn, FunctionFailure):
            return self._unresolved("action", path, fn)
        return await self.actions.run(fn, args, identity)

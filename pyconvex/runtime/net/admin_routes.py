"""Admin HTTP routes for the CLI (``pyconvex data``, ``logs``, ``env``; ``sql``, ``export`` and
``import`` in :mod:`.data_routes`).

Every route needs ``Authorization: Convex <admin key>`` (the key in ``<data_dir>/admin_key``)::

    GET  /api/_pyconvex/tables                          -> {"tables": [{"name", "documents"}]}
    GET  /api/_pyconvex/tables/<table>?limit=&order=    -> {"documents": [<Convex JSON>]}
    GET  /api/_pyconvex/logs?history=N&follow=1         -> JSON lines, one execution each
    GET  /api/_pyconvex/env                             -> {"variables": {name: value}}
    POST /api/_pyconvex/env {"name", "value"|null}      -> {"name", "outcome"}
    POST /api/_pyconvex/deploy/plan {"bundle"}          -> the diff, and documents refused
    POST /api/_pyconvex/deploy {"bundle", "base"}       -> {"status": "deployed"|"refused"}

Running functions goes through the ordinary HTTP API (``/api/function``), which accepts the
same header — and ``Convex <admin key>:<base64 identity JSON>`` to act as a user — and then
allows internal functions (:func:`admin_caller` parses it).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from pyconvex.errors import PyconvexError
from pyconvex.protocol import LogEntry
from pyconvex.runtime.auth.callers import AdminAuthError, admin_caller
from pyconvex.runtime.data.service import DataService
from pyconvex.runtime.functions.env_vars import SET_PATH, EnvVarError, check_name, check_value
from pyconvex.runtime.functions.env_vars import read_variables as _read_variables
from pyconvex.runtime.functions.function_path import is_system_path
from pyconvex.runtime.functions.log_history import LogHistory
from pyconvex.runtime.functions.results import FunctionResult
from pyconvex.runtime.net.data_routes import IMPORT_PATH, BadRequest, DataRoutes
from pyconvex.runtime.store.memory import BY_CREATION_TIME, SYSTEM_TABLES, Store
from pyconvex.runtime.store.schema_state import SchemaState
from pyconvex.values import encode_value

PREFIX = "/api/_pyconvex"
__all__ = ["IMPORT_PATH", "admin_only", "admin_routes"]
MAX_DOCUMENTS = 10_000


class DeployRefused(PyconvexError):
    """A deploy that cannot go ahead: answered with ``status`` and ``{"code", "message"}``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class CodeDeployer(Protocol):
    """What takes ``pyconvex deploy``'s code (``pyconvex.dev.deployer``); raises
    :class:`DeployRefused`."""

    async def plan(self, body: Any) -> dict[str, Any]: ...

    async def apply(self, body: Any) -> dict[str, Any]: ...


class AdminDeployment(Protocol):
    """The part of the Deployment the admin routes use."""

    admin_key: str | None
    store: Store
    schema: SchemaState
    log_history: LogHistory

    async def run_mutation(
        self, path: str, args: dict[str, Any] | None = None, *, allow_internal: bool = False
    ) -> FunctionResult: ...


def admin_routes(deployment: object) -> list[BaseRoute]:
    """The admin routes for ``deployment`` (none for stand-ins without admin support)."""
    if not all(hasattr(deployment, a) for a in ("admin_key", "store", "schema", "log_history")):
        return []
    return AdminApi(deployment).routes()  # type: ignore[arg-type]


def _json(content: Any, status: int = 200) -> Response:
    text = json.dumps(content, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return Response(text, status_code=status, media_type="application/json")


_BadRequest = BadRequest


Handler = Callable[[Request], Awaitable[Response]]


def admin_only(handler: Handler, admin_key: Callable[[], str | None]) -> Handler:
    """``handler`` behind ``Authorization: Convex <admin key>``: 401 with a code and what to
    send otherwise (``admin_key`` gives the deployment's key, None if it has none)."""

    async def endpoint(request: Request) -> Response:
        header = request.headers.get("authorization", "")
        scheme, _, credential = header.partition(" ")
        try:
            if scheme.lower() != "convex" or not credential:
                raise AdminAuthError(
                    "MissingAdminKey",
                    "This admin route needs 'Authorization: Convex <admin key>' (the key in "
                    ".pyconvex/admin_key).",
                )
            admin_caller(credential, admin_key())
        except AdminAuthError as e:
            return _json({"code": e.code, "message": e.message}, 401)
        return await handler(request)

    return endpoint


class AdminApi:
    """The ``/api/_pyconvex/...`` admin routes over one deployment."""

    def __init__(self, deployment: AdminDeployment) -> None:
        self._deployment = deployment
        self.data = DataRoutes(DataService(deployment))  # type: ignore[arg-type]

    def routes(self) -> list[BaseRoute]:
        return [
            Route(f"{PREFIX}/tables", self._wrap(self.tables), methods=["GET"]),
            Route(f"{PREFIX}/tables/{{table}}", self._wrap(self.documents), methods=["GET"]),
            Route(f"{PREFIX}/logs", self._wrap(self.logs), methods=["GET"]),
            Route(f"{PREFIX}/env", self._wrap(self.env_list), methods=["GET"]),
            Route(f"{PREFIX}/env", self._wrap(self.env_set), methods=["POST"]),
            *self.data.routes(self._wrap),
            Route(f"{PREFIX}/deploy/plan", self._wrap(self.deploy_plan), methods=["POST"]),
            Route(f"{PREFIX}/deploy", self._wrap(self.deploy), methods=["POST"]),
        ]

    def _wrap(self, handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            try:
                return await handler(request)
            except _BadRequest as e:
                return _json({"code": e.code, "message": e.message}, e.status)

        return admin_only(endpoint, lambda: self._deployment.admin_key)

    # -- data -------------------------------------------------------------------------------
    def _table_names(self) -> list[str]:
        store_tables = [t.name for t in self._deployment.store.tables.values() if not t.is_system]
        schema = self._deployment.schema.definition
        declared = list(schema.tables) if schema is not None else []
        return sorted(set(store_tables) | set(declared))

    async def tables(self, request: Request) -> Response:
        tables = self._deployment.store.tables
        out = []
        for name in self._table_names():
            t = tables.get(name)
            out.append({"name": name, "documents": 0 if t is None else len(t.docs)})
        return _json({"tables": out})

    async def documents(self, request: Request) -> Response:
        name = request.path_params["table"]
        names = self._table_names()
        if name not in names and name not in SYSTEM_TABLES:
            system = ", ".join(sorted(SYSTEM_TABLES))
            raise _BadRequest(
                404,
                "TableNotFound",
                f"No table {name!r} in this deployment. Tables: {', '.join(names) or 'none'} "
                f"(system tables: {system}).",
            )
        params = request.query_params
        limit = _int_param(params.get("limit"), "limit", 100, 1, MAX_DOCUMENTS)
        order = params.get("order", "desc")
        if order not in ("asc", "desc"):
            raise _BadRequest(400, "BadOrder", f"order must be 'asc' or 'desc', got {order!r}.")
        store = self._deployment.store
        table = store.tables.get(name)
        docs = []
        if table is not None:
            scan = table.scan(BY_CREATION_TIME, None, None, order == "desc", store.durable_ts)
            docs = [encode_value(doc) for _, doc in itertools.islice(scan, limit)]
        return _json({"table": name, "documents": docs})

    # -- logs -------------------------------------------------------------------------------
    async def logs(self, request: Request) -> Response:
        params = request.query_params
        history = _int_param(params.get("history"), "history", 0, 0, 1_000_000)
        follow = params.get("follow", "1") not in ("0", "false")
        log = self._deployment.log_history
        recent = [e for e in log.recent() if _shown(e)][-history:] if history else []
        if not follow:
            lines = "".join(json.dumps(e.to_json()) + "\n" for e in recent)
            return Response(lines, media_type="application/x-ndjson")
        # From here on nothing is missed: the position is fixed before "open" is sent.
        entries = log.follow(since=recent[0].seq if recent else log.total)

        async def stream() -> AsyncIterator[str]:
            # A first line at once, so the client knows the stream is open.
            yield json.dumps({"type": "open", "capacity": log.capacity}) + "\n"
            async for entry in entries:
                if _shown(entry):
                    yield json.dumps(entry.to_json()) + "\n"

        return StreamingResponse(stream(), media_type="application/x-ndjson")

    # -- environment variables --------------------------------------------------------------
    async def env_list(self, request: Request) -> Response:
        return _json({"variables": _read_variables(self._deployment.store)})

    async def env_set(self, request: Request) -> Response:
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError as e:
            raise _BadRequest(400, "BadJsonBody", f"The body is not valid JSON: {e}") from None
        if not isinstance(body, dict):
            raise _BadRequest(400, "BadJsonBody", 'The body must be {"name": ..., "value": ...}.')
        name, value = body.get("name"), body.get("value")
        try:
            check_name(name)
            if value is not None:
                check_value(str(name), value)
        except EnvVarError as e:
            raise _BadRequest(400, "InvalidEnvironmentVariable", str(e)) from None
        result = await self._deployment.run_mutation(
            SET_PATH, {"name": name, "value": value}, allow_internal=True
        )
        if result.failure is not None:
            raise _BadRequest(500, "EnvironmentVariableNotSaved", result.failure.message)
        return _json({"name": name, "outcome": result.value})


    # -- deploying code -----------------------------------------------------------------------
    async def deploy_plan(self, request: Request) -> Response:
        return await self._deploy(request, plan=True)

    async def deploy(self, request: Request) -> Response:
        return await self._deploy(request, plan=False)

    async def _deploy(self, request: Request, *, plan: bool) -> Response:
        deployer: CodeDeployer | None = getattr(self._deployment, "deployer", None)
        if deployer is None:
            raise _BadRequest(
                404,
                "DeployNotSupported",
                "This deployment does not take deploys: deploy to one `pyconvex serve` or "
                "`pyconvex dev` runs.",
            )
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError as e:
            raise _BadRequest(400, "BadJsonBody", f"The body is not valid JSON: {e}") from None
        try:
            return _json(await (deployer.plan(body) if plan else deployer.apply(body)))
        except DeployRefused as e:
            raise _BadRequest(e.status, e.code, e.message) from None


def _shown(entry: LogEntry) -> bool:
    # Built-in functions (`pyconvex env` writes) are not the user's executions.
    return not is_system_path(entry.path)


def _int_param(raw: str | None, name: str, default: int, lo: int, hi: int) -> int:
    if raw is None:
        return default
    try:
        n = int(raw)
    except ValueError:
        n = lo - 1
    if not lo <= n <= hi:
        raise _BadRequest(
            400, "BadParameter", f"{name} must be an integer from {lo} to {hi}, got {raw!r}."
        )
    return n

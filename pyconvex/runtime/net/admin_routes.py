"""Admin HTTP routes for the CLI (``pyconvex data``, ``logs``, ``env``).

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

import asyncio
import base64
import datetime
import itertools
import json
import math
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from pyconvex.errors import PyconvexError
from pyconvex.protocol import LogEntry
from pyconvex.runtime.auth.callers import AdminAuthError, admin_caller
from pyconvex.runtime.functions.data_export import ExportError, export_snapshot
from pyconvex.runtime.functions.data_import import (
    ImportError_,
    detect_format,
    read_plan,
    run_import,
)
from pyconvex.runtime.functions.env_vars import SET_PATH, EnvVarError, check_name, check_value
from pyconvex.runtime.functions.env_vars import read_variables as _read_variables
from pyconvex.runtime.functions.function_path import is_system_path
from pyconvex.runtime.functions.log_history import LogHistory
from pyconvex.runtime.functions.results import FunctionResult
from pyconvex.runtime.store.memory import BY_CREATION_TIME, SYSTEM_TABLES, Store
from pyconvex.runtime.store.schema_state import SchemaState
from pyconvex.values import encode_value

PREFIX = "/api/_pyconvex"
#: Imports stream whole files: the request body limit does not apply here.
IMPORT_PATH = f"{PREFIX}/import"
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

    async def read_only_query(self, query: str, max_rows: int) -> dict[str, Any]: ...


def admin_routes(deployment: object) -> list[BaseRoute]:
    """The admin routes for ``deployment`` (none for stand-ins without admin support)."""
    if not all(hasattr(deployment, a) for a in ("admin_key", "store", "schema", "log_history")):
        return []
    return AdminApi(deployment).routes()  # type: ignore[arg-type]


def _json(content: Any, status: int = 200) -> Response:
    text = json.dumps(content, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return Response(text, status_code=status, media_type="application/json")


#: The most rows one ``pyconvex sql`` answer carries (the query's own LIMIT goes lower).
MAX_SQL_ROWS = 100_000


class _BadRequest(PyconvexError):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


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

    def routes(self) -> list[BaseRoute]:
        return [
            Route(f"{PREFIX}/tables", self._wrap(self.tables), methods=["GET"]),
            Route(f"{PREFIX}/tables/{{table}}", self._wrap(self.documents), methods=["GET"]),
            Route(f"{PREFIX}/logs", self._wrap(self.logs), methods=["GET"]),
            Route(f"{PREFIX}/env", self._wrap(self.env_list), methods=["GET"]),
            Route(f"{PREFIX}/env", self._wrap(self.env_set), methods=["POST"]),
            Route(f"{PREFIX}/sql", self._wrap(self.sql), methods=["POST"]),
            Route(f"{PREFIX}/export", self._wrap(self.export), methods=["GET"]),
            Route(IMPORT_PATH, self._wrap(self.import_), methods=["POST"]),
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

    # -- SQL --------------------------------------------------------------------------------
    async def sql(self, request: Request) -> Response:
        """``{"query": "SELECT ...", "maxRows": N}``: one read-only query over the tables'
        SQL views, at one snapshot; ``{"columns", "types", "rows", "truncated"}``."""
        body = await _json_body(request)
        query, max_rows = body.get("query"), body.get("maxRows", MAX_SQL_ROWS)
        if not isinstance(query, str) or not query.strip():
            raise _BadRequest(400, "BadSqlRequest", 'The body must be {"query": "SELECT ..."}.')
        if not isinstance(max_rows, int) or not 1 <= max_rows <= MAX_SQL_ROWS:
            raise _BadRequest(
                400, "BadSqlRequest", f"maxRows must be a whole number from 1 to {MAX_SQL_ROWS}."
            )
        result = await self._deployment.read_only_query(query, max_rows)
        if "error" in result:
            code = "SqlRefused" if result["refused"] else "SqlError"
            raise _BadRequest(400, code, str(result["error"])[:4000])
        result["rows"] = [[sql_cell(v) for v in row] for row in result["rows"]]
        return _json(result)

    # -- export -----------------------------------------------------------------------------
    async def export(self, request: Request) -> Response:
        """``?format=zip|jsonl|csv|parquet&table=T...&includeFileStorage=1``: one snapshot as a
        ZIP (see data_export.py); ``X-Pyconvex-Export`` says its timestamp and counts."""
        params = request.query_params
        dep = self._deployment
        include = params.get("includeFileStorage", "0") in ("1", "true")
        spool = tempfile.TemporaryFile()  # noqa: SIM115 (closed by the body's reader)
        loop = asyncio.get_running_loop()
        try:
            summary = await export_snapshot(
                dep.store,
                dep.schema,
                spool,
                params.get("format", "zip"),
                params.getlist("table") or None,
                files=getattr(dep, "storage", None) if include else None,
            )
        except ExportError as e:
            spool.close()
            raise _BadRequest(400, "BadExport", str(e)) from None
        except BaseException:
            spool.close()
            raise
        size = spool.tell()
        spool.seek(0)

        async def body() -> AsyncIterator[bytes]:
            try:
                while chunk := await loop.run_in_executor(None, spool.read, 1024 * 1024):
                    yield chunk
            finally:
                spool.close()

        described = {"ts": str(summary.ts), "format": summary.format,
                     "documents": summary.documents, "files": summary.files}  # fmt: skip
        headers = {"X-Pyconvex-Export": json.dumps(described), "Content-Length": str(size)}
        return StreamingResponse(body(), media_type="application/zip", headers=headers)

    # -- import -----------------------------------------------------------------------------
    async def import_(self, request: Request) -> Response:
        """The body is the file (streamed to disk: no size limit); ``?name=`` its file name,
        ``format``, ``table``, ``mode`` (append | replace | replace-all). All rows are checked
        before anything is written; then one commit."""
        params = request.query_params
        name = params.get("name", "upload")
        loop = asyncio.get_running_loop()
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "import"
            with path.open("wb") as sink:
                async for chunk in request.stream():
                    await loop.run_in_executor(None, sink.write, chunk)
            try:
                fmt = detect_format(name, params.get("format"))
                plan = await loop.run_in_executor(
                    None, read_plan, path, name, fmt, params.get("table")
                )
                summary = await run_import(
                    self._deployment, plan, params.get("mode"), path if fmt == "zip" else None
                )
            except ImportError_ as e:
                raise _BadRequest(400, e.code, e.message[:4000]) from None
        return _json(
            {"documents": summary.documents, "files": summary.files, "ts": str(summary.ts)}
        )

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


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError as e:
        raise _BadRequest(400, "BadJsonBody", f"The body is not valid JSON: {e}") from None
    if not isinstance(body, dict):
        raise _BadRequest(400, "BadJsonBody", "The body must be a JSON object.")
    return body


def sql_cell(value: Any) -> Any:
    """A value DuckDB returned, as JSON can carry it (dates in ISO 8601, bytes in base64,
    decimals and UUIDs as text, NaN and infinities as text)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (list, tuple)):
        return [sql_cell(v) for v in value]
    if isinstance(value, dict):
        return {str(k): sql_cell(v) for k, v in value.items()}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    return str(value)


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

"""The admin commands' link to the running deployment: find it, then talk to it with the admin key.

The deployment is ``--url`` / ``--admin-key`` (or ``PYCONVEX_URL`` / ``PYCONVEX_ADMIN_KEY``) when
given, else the one ``pyconvex dev`` serves for this project: ``<data_dir>/deployment.json``
(``{"url", "pid"}``, written while it serves) and ``<data_dir>/admin_key``::

    client = AdminClient.locate(url=None, admin_key=None, root=Path.cwd())
    outcome = client.run_function("messages:list", {"channel": "general"})
    for entry in client.follow_logs(history=10):
        ...

Every failure is a :class:`CliFailure` with the exit code the command should end with.
"""

from __future__ import annotations

import base64
import json
import math
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pyconvex.failures import (
    EXIT_AUTH,
    EXIT_FAILURE,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    CliFailure,
    render_failure,
)
from pyconvex.project import ProjectError, ProjectSettings
from pyconvex.runtime.auth.admin_key import read_admin_key
from pyconvex.runtime.functions.log_history import LogEntry
from pyconvex.values import Int64, Value, decode_value

if TYPE_CHECKING:
    import httpx  # imported when used: it costs ~0.1 s, and `pyconvex dev` never needs it

URL_ENV = "PYCONVEX_URL"
ADMIN_KEY_ENV = "PYCONVEX_ADMIN_KEY"
DEPLOYMENT_FILE = "deployment.json"  # written by `pyconvex dev` (cli/dev_loop.py)
_START_DEV = (
    "Start it with `pyconvex dev` in the project directory (or pass --url and --admin-key)."
)

#: The options every admin command takes.
UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url",
        envvar=URL_ENV,
        show_default=False,
        help="The deployment's URL (default: the one `pyconvex dev` serves for this project).",
    ),
]
AdminKeyOption = Annotated[
    str | None,
    typer.Option(
        "--admin-key",
        envvar=ADMIN_KEY_ENV,
        show_default=False,
        help="The deployment's admin key (default: .pyconvex/admin_key of this project).",
    ),
]


@contextmanager
def reported_failures() -> Iterator[None]:
    """Render a :class:`CliFailure` as one error block and exit with its code."""
    try:
        yield
    except CliFailure as failure:
        render_failure(failure)
        raise typer.Exit(failure.code) from None


@dataclass(slots=True)
class FunctionOutcome:
    """A function call's result as the deployment reported it (values decoded)."""

    ok: bool
    value: Value = None
    error_message: str = ""
    error_data: Value = None
    has_error_data: bool = False
    log_lines: list[str] = field(default_factory=list)


def _running_url(data_dir: Path) -> str | None:
    """The URL in ``deployment.json`` if the process that wrote it is still alive."""
    try:
        info = json.loads((data_dir / DEPLOYMENT_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict) or not isinstance(info.get("url"), str):
        return None
    pid = info.get("pid")
    if isinstance(pid, int):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass  # alive, owned by someone else
    return str(info["url"])


@dataclass(frozen=True, slots=True)
class AdminClient:
    """Admin access to one deployment (see the module docstring)."""

    url: str
    admin_key: str
    timeout: float = 30.0

    @classmethod
    def locate(
        cls, url: str | None = None, admin_key: str | None = None, root: Path | None = None
    ) -> AdminClient:
        url = url or os.environ.get(URL_ENV) or None
        admin_key = admin_key or os.environ.get(ADMIN_KEY_ENV) or None
        if url is None or admin_key is None:
            try:
                settings = ProjectSettings.load(root or Path.cwd())
            except ProjectError as e:
                raise CliFailure(
                    "Cannot read the project settings", detail=str(e), code=EXIT_USAGE
                ) from None
            data_dir = settings.data_dir
            if url is None:
                url = _running_url(data_dir)
                if url is None:
                    raise CliFailure(
                        "No running deployment",
                        where=f"project {settings.root} (no live {data_dir / DEPLOYMENT_FILE})",
                        hint=_START_DEV,
                        code=EXIT_UNAVAILABLE,
                    )
            if admin_key is None:
                admin_key = read_admin_key(data_dir)
                if admin_key is None:
                    raise CliFailure(
                        "No admin key",
                        where=f"{data_dir / 'admin_key'} does not exist",
                        hint="`pyconvex dev` creates it at first start; for another deployment "
                        "pass --admin-key (or set PYCONVEX_ADMIN_KEY).",
                        code=EXIT_AUTH,
                    )
        return cls(url.rstrip("/"), admin_key)

    # -- HTTP -----------------------------------------------------------------------------
    def _headers(self, identity: dict[str, Any] | None = None) -> dict[str, str]:
        credential = self.admin_key
        if identity is not None:
            credential += ":" + base64.b64encode(json.dumps(identity).encode()).decode()
        return {"Authorization": f"Convex {credential}", "Convex-Client": "pyconvex-cli"}

    def _request(
        self,
        doing: str,
        method: str,
        path: str,
        *,
        identity: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        import httpx

        try:
            response = httpx.request(
                method,
                self.url + path,
                headers=self._headers(identity),
                timeout=self.timeout,
                **kwargs,
            )
        except httpx.TransportError as e:
            raise self._unreachable(e) from None
        return self._check(response, doing).json()

    def _unreachable(self, error: Exception) -> CliFailure:
        return CliFailure(
            f"Cannot reach the deployment at {self.url}",
            detail=f"{type(error).__name__}: {error}",
            hint=_START_DEV,
            code=EXIT_UNAVAILABLE,
        )

    def _check(self, response: httpx.Response, doing: str) -> httpx.Response:
        """``response`` if it succeeded; else the failure to report ("Cannot <doing>")."""
        if response.status_code < 400:
            return response
        try:
            body = response.json()
            code, message = str(body["code"]), str(body["message"])
        except (ValueError, KeyError, TypeError):
            code, message = f"HTTP {response.status_code}", response.text[:500]
        if response.status_code == 401:
            raise CliFailure(
                "The deployment refused the admin key",
                where=self.url,
                detail=f"{code}: {message}",
                code=EXIT_AUTH,
            )
        raise CliFailure(
            f"Cannot {doing}",
            where=f"{self.url} ({code})",
            detail=message,
            code=EXIT_USAGE if response.status_code in (400, 404) else EXIT_FAILURE,
        )

    # -- functions ------------------------------------------------------------------------
    def run_function(
        self, path: str, args: dict[str, Any], identity: dict[str, Any] | None = None
    ) -> FunctionOutcome:
        """Run a query, mutation or action (internal ones too) and return its outcome."""
        body = {"path": path, "args": args, "format": "convex_encoded_json"}
        response = self._request(
            f"run {path}", "POST", "/api/function", json=body, identity=identity
        )
        return _outcome(response)

    def watch_query(
        self, path: str, args: dict[str, Any], identity: dict[str, Any] | None = None
    ) -> Iterator[FunctionOutcome]:
        """Subscribe to a query (internal ones too) over the WebSocket sync protocol (as an admin acting as
        ``identity``, if given) and yield its first result, then each new one (until the
        caller stops iterating)."""
        from websockets.exceptions import WebSocketException
        from websockets.sync.client import connect

        ws_url = "ws" + self.url.removeprefix("http") + "/api/sync"
        try:
            with connect(ws_url, open_timeout=self.timeout, max_size=None) as socket:
                socket.send(json.dumps(_connect_message()))
                auth: dict[str, Any] = {
                    "type": "Authenticate",
                    "baseVersion": 0,
                    "tokenType": "Admin",
                    "value": self.admin_key,
                }
                if identity is not None:
                    auth["impersonating"] = identity
                socket.send(json.dumps(auth))
                add = {"type": "Add", "queryId": 0, "udfPath": path, "args": [args]}
                socket.send(
                    json.dumps(
                        {
                            "type": "ModifyQuerySet",
                            "baseVersion": 0,
                            "newVersion": 1,
                            "modifications": [add],
                        }
                    )
                )
                for frame in socket:
                    message = json.loads(frame)
                    kind = message.get("type")
                    if kind == "AuthError":
                        raise CliFailure(
                            "The deployment refused the admin key",
                            where=self.url,
                            detail=str(message.get("error")),
                            code=EXIT_AUTH,
                        )
                    if kind == "FatalError":
                        raise CliFailure(
                            "The deployment closed the subscription",
                            detail=str(message.get("error")),
                            code=EXIT_FAILURE,
                        )
                    if kind != "Transition":
                        continue
                    for mod in message.get("modifications", []):
                        if mod.get("queryId") == 0 and mod.get("type") != "QueryRemoved":
                            yield _query_outcome(mod)
        except (OSError, WebSocketException) as e:
            raise self._unreachable(e) from None

    # -- data -----------------------------------------------------------------------------
    def tables(self) -> list[tuple[str, int]]:
        """(name, document count) of every user table, sorted by name."""
        body = self._request("list the tables", "GET", "/api/_pyconvex/tables")
        return [(str(t["name"]), int(t["documents"])) for t in body["tables"]]

    def documents(self, table: str, limit: int, order: str) -> list[dict[str, Value]]:
        """The newest (``order="desc"``) or oldest ``limit`` documents of ``table``."""
        body = self._request(
            f"show table {table}",
            "GET",
            f"/api/_pyconvex/tables/{table}",
            params={"limit": limit, "order": order},
        )
        docs = [decode_value(d) for d in body["documents"]]
        return [d for d in docs if isinstance(d, dict)]

    # -- logs -----------------------------------------------------------------------------
    def log_history(self, history: int) -> list[LogEntry]:
        """The last ``history`` executions, oldest first."""
        import httpx

        try:
            response = httpx.get(
                self.url + "/api/_pyconvex/logs",
                params={"history": history, "follow": 0},
                headers=self._headers(),
                timeout=self.timeout,
            )
        except httpx.TransportError as e:
            raise self._unreachable(e) from None
        lines = self._check(response, "read the logs").text.splitlines()
        return [LogEntry.from_json(json.loads(line)) for line in lines if line.strip()]

    def follow_logs(
        self, history: int, on_open: Callable[[], None] | None = None
    ) -> Iterator[LogEntry]:
        """The last ``history`` executions, then each new one as it happens (forever).
        ``on_open`` is called once the stream is open: no later execution is missed."""
        import httpx

        try:
            with httpx.stream(
                "GET",
                self.url + "/api/_pyconvex/logs",
                params={"history": history},
                headers=self._headers(),
                timeout=httpx.Timeout(self.timeout, read=None),
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    self._check(response, "stream the logs")
                for line in response.iter_lines():
                    if not line.strip():
                        continue
                    obj = json.loads(line)
                    if obj.get("type") == "open":
                        if on_open is not None:
                            on_open()
                        continue
                    yield LogEntry.from_json(obj)
        except httpx.TransportError as e:
            raise self._unreachable(e) from None

    # -- environment variables --------------------------------------------------------------
    def env_list(self) -> dict[str, str]:
        body = self._request("list the environment variables", "GET", "/api/_pyconvex/env")
        return {str(k): str(v) for k, v in body["variables"].items()}

    def env_set(self, name: str, value: str | None) -> str:
        """Set (or, ``value`` None, remove) a variable; returns "created", "updated",
        "unchanged", "removed" or "absent"."""
        doing = f"{'set' if value is not None else 'remove'} environment variable {name}"
        body = self._request(
            doing, "POST", "/api/_pyconvex/env", json={"name": name, "value": value}
        )
        return str(body["outcome"])


def _connect_message() -> dict[str, Any]:
    return {
        "type": "Connect",
        "sessionId": str(uuid.uuid4()),
        "connectionCount": 0,
        "lastCloseReason": "InitialConnect",
        "clientTs": 0,
    }


def _outcome(body: dict[str, Any]) -> FunctionOutcome:
    """An HTTP API response body as an outcome."""
    return _decoded(body, body.get("status") == "success")


def _query_outcome(mod: dict[str, Any]) -> FunctionOutcome:
    """A Transition's QueryUpdated/QueryFailed modification as an outcome."""
    return _decoded(mod, mod.get("type") == "QueryUpdated")


def _decoded(message: dict[str, Any], success: bool) -> FunctionOutcome:
    # Both shapes carry value / errorMessage / errorData / logLines under the same names.
    lines = [str(line) for line in message.get("logLines") or []]
    if success:
        return FunctionOutcome(True, decode_value(message.get("value")), log_lines=lines)
    has_data = "errorData" in message
    return FunctionOutcome(
        False,
        error_message=str(message.get("errorMessage", "")),
        error_data=decode_value(message["errorData"]) if has_data else None,
        has_error_data=has_data,
        log_lines=lines,
    )


def plain(value: Value) -> Any:
    """A Convex value as plain JSON for people to read: int64 and integral floats as integers,
    bytes as ``{"$bytes": base64}``, NaN and infinities as strings::

        plain({"n": Int64(5), "x": 2.0, "b": b"hi"})  # {'n': 5, 'x': 2, 'b': {'$bytes': 'aGk='}}
    """
    if isinstance(value, Int64):
        return int(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value).replace("inf", "Infinity").replace("nan", "NaN")
        if value.is_integer() and abs(value) < 2**53:
            return int(value)
        return value
    if isinstance(value, bytes):
        return {"$bytes": base64.b64encode(value).decode()}
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value

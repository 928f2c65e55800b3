"""Admin access to a running deployment: run functions (internal ones too, as anyone), watch a
query, read tables, logs and environment variables, deploy code, with the admin key.

The deployment is ``url`` / ``admin_key`` (or ``PYCONVEX_URL`` / ``PYCONVEX_ADMIN_KEY``) when
given, else the one ``pyconvex dev`` serves for the project at ``root`` (found through its data
directory: :func:`pyconvex.project.running_deployment`)::

    client = AdminClient.locate()                     # or AdminClient(url, admin_key)
    outcome = client.run_function("messages:list", {"channel": "general"})
    outcome.ok, outcome.value, outcome.log_lines
    for outcome in client.watch_query("messages:list", {}):   # first result, then each change
        ...
    for entry in client.follow_logs(history=10):       # pyconvex.protocol.LogEntry
        ...

Requests are HTTP (httpx) and, for :meth:`AdminClient.watch_query`, pyconvex's own client
(:class:`~pyconvex.client.ConvexClient`) with the admin key; both are imported when first
used. Failures raise the classes of
:mod:`pyconvex.client.errors`.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyconvex.client.errors import (
    AdminKeyError,
    DeploymentNotFoundError,
    RequestRefusedError,
    UnreachableError,
)
from pyconvex.project import (
    ProjectSettings,
    admin_key_path,
    deployment_file,
    read_admin_key,
    running_deployment,
)
from pyconvex.protocol import LogEntry
from pyconvex.values import Value, decode_value

if TYPE_CHECKING:
    import httpx  # imported when used: it costs ~0.1 s, and `pyconvex dev` never needs it

URL_ENV = "PYCONVEX_URL"
ADMIN_KEY_ENV = "PYCONVEX_ADMIN_KEY"
CLIENT_NAME = "pyconvex-cli"
#: Seconds a deploy may take (checking every document and building indexes on big tables).
DEPLOY_TIMEOUT = 600.0


@dataclass(slots=True)
class FunctionOutcome:
    """A function call's result as the deployment reported it (values decoded)."""

    ok: bool
    value: Value = None
    error_message: str = ""
    error_data: Value = None
    has_error_data: bool = False
    log_lines: list[str] = field(default_factory=list)


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
        """The deployment at ``url`` with ``admin_key``; what is not given comes from the
        environment, then from the project at ``root`` (default: the current directory).

        Raises :class:`~pyconvex.project.ProjectError` (unreadable settings),
        :class:`DeploymentNotFoundError` or :class:`AdminKeyError`.
        """
        url = url or os.environ.get(URL_ENV) or None
        admin_key = admin_key or os.environ.get(ADMIN_KEY_ENV) or None
        if url is None or admin_key is None:
            settings = ProjectSettings.load(root or Path.cwd())
            data_dir = settings.data_dir
            if url is None:
                running = running_deployment(data_dir)
                if running is None:
                    raise DeploymentNotFoundError(
                        "No running deployment",
                        project=str(settings.root),
                        reason=f"no live {deployment_file(data_dir)}",
                    )
                url = running.url
            if admin_key is None:
                admin_key = read_admin_key(data_dir)
                if admin_key is None:
                    raise AdminKeyError(
                        "No admin key", detail=f"{admin_key_path(data_dir)} does not exist"
                    )
        return cls(url.rstrip("/"), admin_key)

    # -- HTTP -----------------------------------------------------------------------------
    def _headers(self, identity: dict[str, Any] | None = None) -> dict[str, str]:
        credential = self.admin_key
        if identity is not None:
            credential += ":" + base64.b64encode(json.dumps(identity).encode()).decode()
        return {"Authorization": f"Convex {credential}", "Convex-Client": CLIENT_NAME}

    def _request(
        self,
        doing: str,
        method: str,
        path: str,
        *,
        identity: dict[str, Any] | None = None,
        parse: bool = True,
        **kwargs: Any,
    ) -> Any:
        import httpx

        try:
            response = httpx.request(
                method,
                self.url + path,
                headers=self._headers(identity),
                timeout=kwargs.pop("timeout", self.timeout),
                **kwargs,
            )
        except httpx.TransportError as e:
            raise self._unreachable(e) from None
        checked = self._check(response, doing)
        return checked.json() if parse else checked.text

    def _unreachable(self, error: Exception) -> UnreachableError:
        return UnreachableError(self.url, f"{type(error).__name__}: {error}")

    def _check(self, response: httpx.Response, doing: str) -> httpx.Response:
        """``response`` if it succeeded; else the error saying what failed."""
        if response.status_code < 400:
            return response
        try:
            body = response.json()
            code, message = str(body["code"]), str(body["message"])
        except (ValueError, KeyError, TypeError):
            code, message = f"HTTP {response.status_code}", response.text[:500]
        if response.status_code == 401:
            raise AdminKeyError(
                "The deployment refused the admin key", url=self.url, detail=f"{code}: {message}"
            )
        raise RequestRefusedError(doing, self.url, response.status_code, code, message)

    # -- functions ------------------------------------------------------------------------
    def run_function(
        self, path: str, args: dict[str, Any], identity: dict[str, Any] | None = None
    ) -> FunctionOutcome:
        """Run a query, mutation or action (internal ones too; as the user whose claims are
        ``identity``, if given) and return its outcome."""
        body = {"path": path, "args": args, "format": "convex_encoded_json"}
        response = self._request(
            f"run {path}", "POST", "/api/function", json=body, identity=identity
        )
        return _outcome(response, response.get("status") == "success")

    def watch_query(
        self, path: str, args: dict[str, Any], identity: dict[str, Any] | None = None
    ) -> Iterator[FunctionOutcome]:
        """Subscribe to a query (internal ones too; as ``identity``, if given) and yield its
        first result, then each new one, until the caller stops. Runs on
        :class:`~pyconvex.client.ConvexClient`, so it survives the deployment restarting."""
        from pyconvex.client.blocking_client import ConvexClient
        from pyconvex.client.errors import AuthenticationError, NotConvexDeploymentError

        self._request(f"watch {path}", "GET", "/version", parse=False)  # reachable at all?
        client = ConvexClient(self.url, headers={"Convex-Client": CLIENT_NAME})
        try:
            client.set_admin_auth(self.admin_key, identity)
            with client.subscribe(path, args) as sub:
                for result in sub.outcomes():
                    error = result.error
                    if error is None:
                        yield FunctionOutcome(True, result.value, log_lines=list(result.log_lines))
                        continue
                    data = getattr(error, "data", None)
                    has_data = hasattr(error, "data")
                    yield FunctionOutcome(
                        False,
                        error_message=error.message,
                        error_data=data,
                        has_error_data=has_data,
                        log_lines=list(result.log_lines),
                    )
        except AuthenticationError as e:
            raise AdminKeyError(
                "The deployment refused the admin key", url=self.url, detail=str(e)
            ) from None
        except NotConvexDeploymentError as e:
            raise UnreachableError(self.url, e.detail) from None
        finally:
            client.close()

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

    def dashboard_link(self) -> str:
        """A new one-time sign-in link to the deployment's dashboard."""
        body = self._request("sign in to the dashboard", "POST", "/api/_pyconvex/dashboard/login")
        return self.url + str(body["path"])

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
        """Every environment variable of the deployment."""
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

    # -- deploying code ---------------------------------------------------------------------
    def deploy_plan(self, bundle: dict[str, Any]) -> dict[str, Any]:
        """What deploying ``bundle`` (``pyconvex.dev.bundle.Bundle.to_json()``) would change,
        the stored documents its schema refuses included; nothing changes."""
        body: dict[str, Any] = self._request(
            "plan the deploy",
            "POST",
            "/api/_pyconvex/deploy/plan",
            json={"bundle": bundle},
            timeout=DEPLOY_TIMEOUT,
        )
        return body

    def deploy(self, bundle: dict[str, Any], base: str | None) -> dict[str, Any]:
        """Switch the deployment to ``bundle`` if it still serves the code ``base`` (a plan's);
        ``{"status": "deployed" | "unchanged" | "refused", ...}``."""
        body: dict[str, Any] = self._request(
            "deploy",
            "POST",
            "/api/_pyconvex/deploy",
            json={"bundle": bundle, "base": base},
            timeout=DEPLOY_TIMEOUT,
        )
        return body


def _outcome(message: dict[str, Any], success: bool) -> FunctionOutcome:
    """An HTTP API response body, or a Transition's QueryUpdated / QueryFailed modification, as
    an outcome: both carry value / errorMessage / errorData / logLines under the same names."""
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

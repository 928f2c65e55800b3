"""The HTTP function API (PROTOCOL.md §2): what ConvexHttpClient, the PyPI HTTP client and curl use.

Function errors are HTTP 200 with ``{"status": "error", ...}`` (the Python HTTP client raises on
anything else); problems with the request itself are 4xx with ``{"code", "message"}``::

    POST /api/query {"path": "messages:list", "args": {"channel": "..."}, "format": "json"}
    -> 200 {"status": "success", "value": [...], "logLines": []}
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Literal, Protocol

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from pyconvex.errors import InvalidValueError, PyconvexError
from pyconvex.protocol import clip, decode_ts, dumps, encode_ts, log_function_lines
from pyconvex.runtime.auth.callers import PUBLIC, AdminAuthError, Caller, admin_caller
from pyconvex.runtime.auth.tokens import TokenRefused, TokenVerifier, verify_fetching
from pyconvex.runtime.functions.function_path import normalize_path
from pyconvex.runtime.functions.results import (
    FunctionFailure,
    FunctionKind,
    FunctionResult,
    redacted,
    redacts_for_clients,
)
from pyconvex.runtime.net.body_limit import BodyTooLarge
from pyconvex.runtime.net.subscriptions import SERVER_ERROR, decode_args
from pyconvex.runtime.net.sync_session import SyncDeployment
from pyconvex.values import Value, encode_clean, encode_value
from pyconvex.values.encoding import check_json_nesting

_log = logging.getLogger("pyconvex.http")

Format = Literal["convex_encoded_json", "json"]
FORMATS: tuple[Format, ...] = ("convex_encoded_json", "json")

_CALLER = "pyconvex.caller"  # request.scope key: the Caller that _wrap authorised


class HttpDeployment(SyncDeployment, Protocol):
    def function_kind(self, path: str, *, public_only: bool = False) -> FunctionKind | None: ...


class RequestError(PyconvexError):
    """A request-level problem: answered with ``status`` and ``{"code", "message"}``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _json(content: Any, status: int = 200) -> Response:
    return Response(dumps(content), status_code=status, media_type="application/json")


def _error(exc: RequestError) -> Response:
    return _json({"code": exc.code, "message": exc.message}, exc.status)


def _reject_constant(name: str) -> Any:
    raise RequestError(
        400,
        "BadJsonBody",
        f"The JSON body holds the constant {name}, which is not valid Convex JSON "
        '(NaN and Infinity travel as {"$float": ...}).',
    )


def _loads(text: str | bytes, what: str) -> Any:
    try:
        check_json_nesting(text, f"The {what}")
    except InvalidValueError as exc:
        raise RequestError(400, "BadJsonBody", str(exc)) from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except ValueError as exc:
        raise RequestError(
            400, "BadJsonBody", f"The {what} is not valid JSON: {clip(str(exc), 300)}."
        ) from None


async def _body_object(request: Request) -> dict[str, Any]:
    body = await request.body()
    if not body.strip():
        return {}
    obj = _loads(body, "request body")
    if not isinstance(obj, dict):
        raise RequestError(400, "BadJsonBody", "The request body must be a JSON object.")
    return obj


async def _check_auth(request: Request, deployment: object) -> Caller:
    """``Authorization: Convex <admin key>[:<base64 identity>]`` makes an admin caller (internal
    functions allowed, acting as that identity); ``Bearer <JWT>`` a user signed in by a
    provider of auth_config.py; no header, a public one."""
    header = request.headers.get("authorization")
    if not header:
        return PUBLIC
    scheme, _, credential = header.partition(" ")
    if scheme.lower() == "convex":
        try:
            return admin_caller(credential, getattr(deployment, "admin_key", None))
        except AdminAuthError as exc:
            raise RequestError(401, exc.code, exc.message) from None
    if scheme.lower() == "bearer":
        verifier = getattr(deployment, "token_verifier", None) or TokenVerifier([])
        try:
            verified = await verify_fetching(verifier, credential.strip())
        except TokenRefused as exc:
            _log.warning("sign-in refused (HTTP %s): %s", request.url.path, exc.reason)
            raise RequestError(401, "Unauthenticated", exc.reason) from None
        return Caller(identity=verified.identity)
    raise RequestError(
        401,
        "InvalidAuthHeader",
        "The Authorization header must be 'Bearer <token>' (a user) or 'Convex <admin key>'.",
    )


def _caller(request: Request) -> Caller:
    caller: Caller = request.scope.get(_CALLER, PUBLIC)
    return caller


def _path(obj: dict[str, Any], key: str = "path") -> str:
    raw = obj.get(key)
    if raw is None:
        raise RequestError(
            400,
            "MissingFunctionPath",
            f'The request needs a {key!r} naming the function, e.g. "messages:list".',
        )
    if not isinstance(raw, str):
        raise RequestError(
            400, "BadConvexFunctionPath", f"{key!r} must be a string, got {clip(repr(raw), 80)}."
        )
    try:
        return normalize_path(raw)
    except ValueError as exc:
        raise RequestError(400, "BadConvexFunctionPath", str(exc)) from None


def _args(raw: Any, *, object_only: bool = False) -> dict[str, Value]:
    if raw is None:
        return {}
    if object_only and not isinstance(raw, dict):
        raise RequestError(400, "BadArgs", "'args' must be a JSON object here.")
    try:
        return decode_args(raw)
    except ValueError as exc:
        raise RequestError(400, "BadArgs", str(exc)) from None


def _format(raw: Any, default: Format = "json") -> Format:
    if raw is None:
        return default
    for fmt in FORMATS:
        if raw == fmt:
            return fmt
    raise RequestError(
        400, "BadFormat", f"Unknown format {clip(repr(raw), 80)}; expected one of {list(FORMATS)}."
    )


def _encode(value: Value, fmt: Format) -> Any:
    return encode_value(value) if fmt == "convex_encoded_json" else encode_clean(value)


def result_body(result: FunctionResult, fmt: Format) -> dict[str, Any]:
    """A function call's outcome as the HTTP API returns it."""
    failure = result.failure
    if failure is None:
        try:
            return {
                "status": "success",
                "value": _encode(result.value, fmt),
                "logLines": result.log_lines,
            }
        except ValueError as exc:
            failure = FunctionFailure.server_error(f"The function returned an invalid value: {exc}")
    body: dict[str, Any] = {"status": "error", "errorMessage": failure.message}
    if failure.is_convex_error:
        try:
            body["errorData"] = _encode(failure.data, fmt)
        except ValueError:
            body["errorData"] = None
    body["logLines"] = result.log_lines
    return body


Handler = Callable[[Request], Awaitable[Response]]


class HttpApi:
    """The ``/api/...`` function endpoints over one deployment."""

    def __init__(self, deployment: HttpDeployment) -> None:
        self._deployment = deployment

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/api/query", self._wrap(self.query), methods=["POST"]),
            Route("/api/query", self._wrap(self.query_get), methods=["GET"]),
            Route("/api/mutation", self._wrap(self.mutation), methods=["POST"]),
            Route("/api/action", self._wrap(self.action), methods=["POST"]),
            Route("/api/query_ts", self._wrap(self.query_ts), methods=["GET", "POST"]),
            Route("/api/query_at_ts", self._wrap(self.query_at_ts), methods=["POST"]),
            Route("/api/query_batch", self._wrap(self.query_batch), methods=["POST"]),
            Route("/api/function", self._wrap(self.function), methods=["POST"]),
            Route("/api/run/{path:path}", self._wrap(self.run), methods=["GET", "POST"]),
            Route("/api/debug_event", self._wrap(self.debug_event), methods=["POST"]),
        ]

    def _wrap(self, handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            try:
                request.scope[_CALLER] = await _check_auth(request, self._deployment)
                return await handler(request)
            except RequestError as exc:
                return _error(exc)
            except BodyTooLarge:
                raise  # answered 413 already (body_limit.py)
            except Exception:
                _log.exception("HTTP API request %s failed", request.url.path)
                return _json({"code": "InternalServerError", "message": SERVER_ERROR}, 500)

        return endpoint

    async def _call(
        self,
        kind: FunctionKind | Literal["any"],
        path: str,
        args: dict[str, Value],
        ts: int | None = None,
        caller: Caller = PUBLIC,
        *,
        queries_only: bool = False,
    ) -> FunctionResult:
        if kind == "any":
            # A public caller is not told that an internal function exists: it is resolved
            # (and refused) as if there were none.
            found = self._deployment.function_kind(path, public_only=not caller.admin)
            if found == "http_action":
                return FunctionResult(
                    failure=FunctionFailure(
                        f"Could not find public function for '{path}'. Did you forget to define it "
                        "in the functions directory, or is it internal?"
                    )
                )
            if queries_only and found in ("mutation", "action"):
                raise RequestError(
                    405,
                    "MethodNotAllowed",
                    f"GET runs queries only, and {path} is a {found} (browsers and proxies "
                    "send GET requests ahead of time, so a GET must not change anything): "
                    "send a POST to run it.",
                )
            # Not found: resolving it as a query says so, with similar names to suggest.
            kind = found or "query"
        who, admin = caller.identity, caller.admin
        if kind == "query":
            result = self._deployment.run_query(
                path, args, ts=ts, identity=who, allow_internal=admin
            )
        elif kind == "mutation":
            result = await self._deployment.run_mutation(
                path, args, identity=who, allow_internal=admin
            )
        else:
            result = await self._deployment.run_action(
                path, args, identity=who, allow_internal=admin
            )
        log_function_lines(kind, path, result.log_lines)
        if not admin and redacts_for_clients(self._deployment):
            return redacted(result)
        return result

    async def _simple(self, request: Request, kind: FunctionKind) -> Response:
        obj = await _body_object(request)
        path, args, fmt = _path(obj), _args(obj.get("args")), _format(obj.get("format"))
        return _json(result_body(await self._call(kind, path, args, caller=_caller(request)), fmt))

    async def query(self, request: Request) -> Response:
        return await self._simple(request, "query")

    async def mutation(self, request: Request) -> Response:
        return await self._simple(request, "mutation")

    async def action(self, request: Request) -> Response:
        return await self._simple(request, "action")

    async def query_get(self, request: Request) -> Response:
        params = request.query_params
        raw_args = params.get("args")
        args = _args(_loads(raw_args, "'args' query parameter") if raw_args else None)
        path, fmt = _path(dict(params)), _format(params.get("format"))
        return _json(
            result_body(await self._call("query", path, args, caller=_caller(request)), fmt)
        )

    async def query_ts(self, request: Request) -> Response:
        return _json({"ts": encode_ts(self._deployment.latest_ts)})

    async def query_at_ts(self, request: Request) -> Response:
        obj = await _body_object(request)
        path, args, fmt = _path(obj), _args(obj.get("args")), _format(obj.get("format"))
        try:
            ts = decode_ts(obj.get("ts"))
        except ValueError as exc:
            raise RequestError(400, "BadTimestamp", f"'ts': {exc}") from None
        latest = self._deployment.latest_ts
        if ts > latest:
            raise RequestError(
                400,
                "BadTimestamp",
                f"'ts' {ts} is newer than the latest commit {latest}; get one from /api/query_ts.",
            )
        return _json(
            result_body(await self._call("query", path, args, ts=ts, caller=_caller(request)), fmt)
        )

    async def query_batch(self, request: Request) -> Response:
        obj = await _body_object(request)
        queries = obj.get("queries")
        if not isinstance(queries, list):
            raise RequestError(
                400, "BadJsonBody", "'queries' must be a list of {path, args, format}."
            )
        calls = []
        for item in queries:
            if not isinstance(item, dict):
                raise RequestError(400, "BadJsonBody", "each entry of 'queries' must be an object.")
            calls.append((_path(item), _args(item.get("args")), _format(item.get("format"))))
        ts = self._deployment.latest_ts  # queries run synchronously: all see this snapshot
        results = [
            result_body(await self._call("query", p, a, ts=ts, caller=_caller(request)), f)
            for p, a, f in calls
        ]
        return _json({"results": results})

    async def function(self, request: Request) -> Response:
        obj = await _body_object(request)
        if obj.get("componentPath"):
            raise RequestError(
                400, "BadComponentPath", "Component paths are not supported by this server."
            )
        path = _path(obj)
        args, fmt = _args(obj.get("args"), object_only=True), _format(obj.get("format"))
        return _json(result_body(await self._call("any", path, args, caller=_caller(request)), fmt))

    async def run(self, request: Request) -> Response:
        segments = request.path_params["path"].strip("/")
        module, _, name = segments.rpartition("/")
        if not module:
            raise RequestError(
                400,
                "BadConvexFunctionPath",
                f"/api/run/{segments} needs a module and a function: /api/run/<module>/<function>.",
            )
        try:
            path = normalize_path(f"{module}:{name}")
        except ValueError as exc:
            raise RequestError(400, "BadConvexFunctionPath", str(exc)) from None
        get = request.method == "GET"
        if get:
            params = request.query_params
            raw_args = params.get("args")
            args = _args(_loads(raw_args, "'args' query parameter") if raw_args else None)
            fmt = _format(params.get("format"))
        else:
            obj = await _body_object(request)
            args, fmt = _args(obj.get("args")), _format(obj.get("format"))
        result = await self._call("any", path, args, caller=_caller(request), queries_only=get)
        return _json(result_body(result, fmt))

    async def debug_event(self, request: Request) -> Response:
        return _json({})

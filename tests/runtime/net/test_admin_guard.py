"""Every admin route of the API port, found by walking the app's routes (so routes added later
are covered too), refuses a request without the admin key and one carrying a valid user token,
and every other route is one known to be public; every internal function — the project's and
pyconvex's own ``_system/`` ones, found by walking them too — is out of reach of a user token,
over HTTP and on the WebSocket; the admin key acting as a user sees exactly what that user's own
token gives, over HTTP and on the WebSocket."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from starlette.routing import Route
from support.deployment import DeploymentFactory
from support.jwt_issuer import Issuer
from support.live_sync import RawSync, live_server

from pyconvex.runtime.functions.deployment import Deployment
from pyconvex.runtime.functions.env_vars import SET_PATH as ENV_SET
from pyconvex.runtime.functions.system_functions import SYSTEM_FUNCTIONS
from pyconvex.runtime.net.app import create_app

FUNCTIONS = """
from pyconvex import internal_action, internal_mutation, internal_query, query


@internal_query
async def secret(ctx) -> str:
    return "internal ok"


@internal_mutation
async def secret_write(ctx) -> str:
    await ctx.db.insert("leaks", {"by": "a user"})
    return "internal ok"


@internal_action
async def secret_act(ctx) -> str:
    return "internal ok"


@query
async def whoami(ctx):
    identity = await ctx.auth.get_user_identity()
    return None if identity is None else {"token": identity.token_identifier, **identity.claims}
"""
ADMIN_PREFIXES = ("/api/_pyconvex/",)
#: Routes anyone may call (functions check visibility and identity themselves; files are read
#: by their unguessable id, uploads need a signed URL). A new route belongs either under an
#: admin prefix, wrapped by admin_only, or here.
PUBLIC_ROUTES = {
    "/version", "/health", "/api/query", "/api/mutation", "/api/action", "/api/function",
    "/api/query_ts", "/api/query_at_ts", "/api/query_batch", "/api/run/{path:path}",
    "/api/debug_event", "/api/storage/upload", "/api/storage/{storage_id}",
    # The web frontend (dist/ when built, else a redirect to the dashboard), and the dashboard:
    # its page, modules and /dashboard/session answer only a browser holding the session
    # cookie its one-time sign-in token bought (tests/runtime/net/test_dashboard_routes.py).
    "/", "/dashboard", "/dashboard/", "/dashboard/login.css", "/dashboard/session",
    "/dashboard/assets/{name}",
}  # fmt: skip


@pytest.fixture
def issuer() -> Iterator[Issuer]:
    with Issuer("ES256") as issuer:
        yield issuer


@pytest.fixture
async def dep(deployment: DeploymentFactory, issuer: Issuer) -> Deployment:
    auth = f"providers = [{json.dumps(issuer.custom_provider())}]\n"
    d = await deployment({"f.py": FUNCTIONS, "auth_config.py": auth}, persistent=True)
    assert d.admin_key is not None
    return d


@pytest.fixture
async def client(dep: Deployment) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(dep)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as c:
        c.app = app  # type: ignore[attr-defined]
        yield c


def admin_routes(app: Any) -> list[tuple[str, str]]:
    """(method, concrete path) of every admin route of the app; any other route must be one of
    :data:`PUBLIC_ROUTES`."""
    starlette = getattr(app, "app", app)
    out = []
    for route in starlette.routes:
        path = getattr(route, "path", repr(route))
        if not isinstance(route, Route) or not route.path.startswith(ADMIN_PREFIXES):
            assert path in PUBLIC_ROUTES, (
                f"{path} is neither an admin route (under {ADMIN_PREFIXES}, wrapped by "
                "admin_only) nor a known public one: if anyone may call it, add it to "
                "PUBLIC_ROUTES in this test"
            )
            continue
        path = re.sub(r"\{[^}]+\}", "x", route.path)
        for method in sorted(route.methods or {"GET"}):
            if method != "HEAD":
                out.append((method, path))
    return out


async def test_every_admin_route_refuses_users_and_the_keyless(
    dep: Deployment, client: httpx.AsyncClient, issuer: Issuer
) -> None:
    routes = admin_routes(client.app)  # type: ignore[attr-defined]
    assert ("GET", "/api/_pyconvex/tables") in routes and ("POST", "/api/_pyconvex/sql") in routes
    user = {"Authorization": f"Bearer {issuer.token()}"}
    admin = {"Authorization": f"Convex {dep.admin_key}"}
    for method, path in routes:
        for headers in ({}, user, {"Authorization": "Convex not-the-key"}):
            r = await client.request(method, path, headers=headers, params={"follow": "0"})
            assert r.status_code == 401, (method, path, headers, r.text)
        r = await client.request(method, path, headers=admin, params={"follow": "0"})
        assert r.status_code != 401, (method, path, r.text)


def internal_functions(dep: Deployment) -> list[tuple[str, str]]:
    """(path, kind) of every function only the admin key may call: the project's internal ones
    and pyconvex's own (``_system/...``, whoever adds them)."""
    out = [(p, f.kind) for p, f in dep.functions.items() if f.visibility == "internal"]
    out += [(p, f.kind) for p, f in SYSTEM_FUNCTIONS.items()]
    assert {p for p, _ in out} >= {"f:secret", "f:secret_write", "f:secret_act", ENV_SET}
    return out


def _tables(dep: Deployment) -> set[str]:
    return {t.name for t in dep.store.tables.values()}


def _not_found(path: str, text: str) -> bool:
    return f"Could not find public function for {path!r}" in text and "internal ok" not in text


async def test_a_user_token_never_reaches_internal_functions(
    dep: Deployment, client: httpx.AsyncClient, issuer: Issuer
) -> None:
    user = {"Authorization": f"Bearer {issuer.token()}"}
    for path, kind in internal_functions(dep):
        for headers in ({}, user):
            for route in (f"/api/{kind}", "/api/function"):
                body = {"path": path, "args": {}, "format": "json"}
                r = await client.post(route, json=body, headers=headers)
                assert r.json()["status"] == "error", (route, path, r.text)
                assert _not_found(path, r.json()["errorMessage"]), (route, path, r.text)
    assert "leaks" not in _tables(dep)


async def test_a_signed_in_socket_never_reaches_internal_functions(
    dep: Deployment, issuer: Issuer
) -> None:
    async with live_server(dep) as server:
        ws = await RawSync.open(server.ws_url)
        await ws.send({"type": "Authenticate", "baseVersion": 0, "tokenType": "User",
                       "value": issuer.token(sub="ada")})  # fmt: skip
        ws.identity = 1
        for n, (path, kind) in enumerate(internal_functions(dep), start=1):
            if kind == "query":
                await ws.add(n, path)
                answer = await ws.query_set_answer()
                failed = answer["modifications"][0]
                assert failed["type"] == "QueryFailed", (path, failed)
                assert _not_found(path, failed["errorMessage"]), (path, failed)
                continue
            send, response = (
                (ws.mutation, "MutationResponse")
                if kind == "mutation"
                else (ws.action, "ActionResponse")
            )
            await send(n, path, {})
            answer = await ws.answer_to(n, response)
            assert not answer["success"] and _not_found(path, answer["result"]), (path, answer)
        await ws.close()
    assert "leaks" not in _tables(dep)


async def test_acting_as_a_user_sees_what_their_token_gives(
    dep: Deployment, client: httpx.AsyncClient, issuer: Issuer
) -> None:
    token = issuer.token(sub="ada", name="Ada", email="ada@example.com", org="acme")
    body = {"path": "f:whoami", "args": {}, "format": "json"}
    as_user = (await client.post("/api/query", json=body,
                                 headers={"Authorization": f"Bearer {token}"})).json()  # fmt: skip
    claims = {k: v for k, v in as_user["value"].items() if k != "token"}
    acting = base64.b64encode(json.dumps(claims).encode()).decode()
    as_admin = (
        await client.post(
            "/api/query", json=body, headers={"Authorization": f"Convex {dep.admin_key}:{acting}"}
        )
    ).json()
    assert as_admin["value"] == as_user["value"]


async def test_impersonating_on_the_socket_sees_what_the_token_gives(
    dep: Deployment, issuer: Issuer
) -> None:
    token = issuer.token(sub="bo", name="Bo", email="bo@example.com", org="acme")
    values = []
    async with live_server(dep) as server:
        for auth in (
            {"tokenType": "User", "value": token},
            {"tokenType": "Admin", "value": dep.admin_key, "impersonating": None},
        ):
            ws = await RawSync.open(server.ws_url)
            if (
                auth["tokenType"] == "Admin"
            ):  # the claims the user's token gave, as the dashboard sends them
                claims = {k: v for k, v in values[0].items() if k != "token"}
                auth["impersonating"] = claims
            await ws.send({"type": "Authenticate", "baseVersion": 0, **auth})
            ws.identity = 1
            await ws.add(1, "f:whoami")
            answer = await ws.query_set_answer()
            values.append(answer["modifications"][0]["value"])
            await ws.close()
    assert values[1] == values[0] and values[0]["token"] == f"{issuer.url}|bo"

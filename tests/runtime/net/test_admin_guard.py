"""Every admin route of the API port, found by walking the app's routes (so routes added later
are covered too), refuses a request without the admin key and one carrying a valid user token;
a user token never reaches internal functions; the admin key acting as a user sees exactly what
that user's own token gives."""

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

from pyconvex.runtime.functions.deployment import Deployment
from pyconvex.runtime.net.app import create_app

FUNCTIONS = """
from pyconvex import internal_query, query


@internal_query
async def secret(ctx) -> str:
    return "internal ok"


@query
async def whoami(ctx):
    identity = await ctx.auth.get_user_identity()
    return None if identity is None else {"token": identity.token_identifier, **identity.claims}
"""
ADMIN_PREFIXES = ("/api/_pyconvex/",)


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
    """(method, concrete path) of every admin route of the app."""
    starlette = getattr(app, "app", app)
    out = []
    for route in starlette.routes:
        if not isinstance(route, Route) or not route.path.startswith(ADMIN_PREFIXES):
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


async def test_a_user_token_never_reaches_internal_functions(
    client: httpx.AsyncClient, issuer: Issuer
) -> None:
    user = {"Authorization": f"Bearer {issuer.token()}"}
    body = {"path": "f:secret", "args": {}, "format": "json"}
    r = await client.post("/api/query", json=body, headers=user)
    assert r.json()["status"] == "error" and "internal ok" not in r.text


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

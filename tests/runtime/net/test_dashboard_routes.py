"""The dashboard's routes: a one-time sign-in token traded for a session cookie; without it
the page, its modules and the admin key behind them are refused; the admin routes it uses."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from support.deployment import DeploymentFactory

from pyconvex.runtime.functions.deployment import Deployment
from pyconvex.runtime.net.app import create_app
from pyconvex.runtime.net.dashboard_routes import ASSETS, CSP, DashboardAccess

FILES = {
    "schema.py": """
        from pyconvex import define_schema, define_table, v

        schema = define_schema({"messages": define_table({"body": v.string()})})
    """,
    "messages.py": """
        from pyconvex import internal_mutation, query, v


        @query(args={"limit": v.optional(v.float64())})
        async def list(ctx, limit=None):
            return await ctx.db.query("messages").take(int(limit or 10))


        @internal_mutation
        async def wipe(ctx) -> None:
            pass
    """,
}


@pytest.fixture
async def dep(deployment: DeploymentFactory) -> Deployment:
    return await deployment(FILES, persistent=True)


@pytest.fixture
async def client(dep: Deployment) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(dep)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        c.access = app.app.state.dashboard  # type: ignore[attr-defined]
        yield c


async def sign_in(client: httpx.AsyncClient) -> dict[str, str]:
    token = client.access.new_login_token()  # type: ignore[attr-defined]
    r = await client.get(f"/dashboard?token={token}")
    assert r.status_code == 303 and r.headers["location"] == "/dashboard"
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/dashboard" in cookie
    name, value = cookie.split(";")[0].split("=", 1)
    client.cookies.clear()
    return {"Cookie": f"{name}={value}"}


async def test_nothing_is_reachable_without_signing_in(client: httpx.AsyncClient) -> None:
    page = await client.get("/dashboard")
    assert page.status_code == 401 and "pyconvex dashboard" in page.text
    assert "<script" not in page.text
    for path in ("/dashboard/session", "/dashboard/assets/app.js", "/dashboard/assets/sync.js"):
        r = await client.get(path)
        assert r.status_code == 401 and r.json()["code"] == "NotSignedIn"
    forged = {"Cookie": "pyconvex_dashboard_80=abc.def"}
    assert (await client.get("/dashboard/session", headers=forged)).status_code == 401
    bad = await client.get("/dashboard?token=made-up")
    assert bad.status_code == 401 and "does not work" in bad.text
    home = await client.get("/")
    assert home.status_code == 307 and home.headers["location"] == "/dashboard"


async def test_a_token_signs_in_once(client: httpx.AsyncClient, dep: Deployment) -> None:
    token = client.access.new_login_token()  # type: ignore[attr-defined]
    first = await client.get(f"/dashboard?token={token}")
    assert first.status_code == 303
    client.cookies.clear()
    again = await client.get(f"/dashboard?token={token}")
    assert again.status_code == 401 and "used already" in again.text
    cookie = await sign_in(client)
    page = await client.get("/dashboard", headers=cookie)
    assert page.status_code == 200 and '<script type="module"' in page.text
    assert page.headers["content-security-policy"] == CSP
    session = await client.get("/dashboard/session", headers=cookie)
    assert session.status_code == 200 and session.json()["adminKey"] == dep.admin_key
    # Another site's page cannot read it with the browser's cookie.
    foreign = await client.get(
        "/dashboard/session", headers={**cookie, "Origin": "http://evil.example"}
    )
    assert foreign.status_code == 401
    script = await client.get("/dashboard/assets/app.js", headers=cookie)
    assert script.status_code == 200 and script.headers["content-type"].startswith(
        "text/javascript"
    )
    for name in ("..%2Fdashboard_routes.py", ".hidden.js", "nope.js", "index.py"):
        assert (await client.get(f"/dashboard/assets/{name}", headers=cookie)).status_code == 404


async def test_a_cookie_dies_with_the_admin_key(dep: Deployment) -> None:
    access = DashboardAccess(lambda: dep.admin_key)
    cookie = access.redeem(access.new_login_token())
    assert cookie is not None and access.valid(cookie)
    assert not DashboardAccess(lambda: "another-key").valid(cookie)
    assert not access.valid(cookie.split(".")[0] + ".0")
    with pytest.raises(RuntimeError):
        DashboardAccess(lambda: None).new_login_token()


async def test_admin_routes_for_the_dashboard(client: httpx.AsyncClient, dep: Deployment) -> None:
    assert (await client.post("/api/_pyconvex/dashboard/login")).status_code == 401
    key = {"Authorization": f"Convex {dep.admin_key}"}
    login = (await client.post("/api/_pyconvex/dashboard/login", headers=key)).json()
    assert login["path"] == f"/dashboard?token={login['token']}"
    assert (await client.get(login["path"])).status_code == 303
    assert (await client.get("/api/_pyconvex/functions")).status_code == 401
    functions = (await client.get("/api/_pyconvex/functions", headers=key)).json()["functions"]
    assert [(f["path"], f["kind"], f["visibility"]) for f in functions] == [
        ("messages:list", "query", "public"),
        ("messages:wipe", "mutation", "internal"),
    ]
    assert functions[0]["args"]["value"]["limit"]["optional"] is True


async def test_the_page_loads_only_its_own_files() -> None:
    sources = {p.name: p.read_text() for p in ASSETS.iterdir()}
    for name, text in sources.items():
        assert not re.search(r"https?://(?!127\.0\.0\.1)", text), f"{name} names another host"
        for imported in re.findall(r'from "\./([\w.]+)"', text):
            assert imported in sources, f"{name} imports {imported}, which is not shipped"
    assert "dashboard_assets" in str(ASSETS) and Path(ASSETS, "index.html").exists()

"""pyconvex dev's sign-in page: a user picker whose tokens the deployment checks like any
provider's, handed back only to pages on this machine."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from support.deployment import DeploymentFactory

from pyconvex.runtime.auth.dev_issuer import DevIssuer
from pyconvex.runtime.functions.deployment import Deployment
from pyconvex.runtime.net.app import create_app
from pyconvex.runtime.net.dev_auth_routes import STARTERS, DevSignIn

WHO = """
from pyconvex import query


@query
async def whoami(ctx):
    identity = await ctx.auth.get_user_identity()
    return None if identity is None else [identity.name, identity.email, identity.subject]
"""
BACK = "http://127.0.0.1:5173/app"


@pytest.fixture
async def dep(deployment: DeploymentFactory) -> Deployment:
    return await deployment({"who.py": WHO})


@pytest.fixture
async def sign_in(tmp_path: Path) -> DevSignIn:
    return DevSignIn(tmp_path / "people.json")


@pytest.fixture
async def client(dep: Deployment, sign_in: DevSignIn) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(dep, dev_sign_in=sign_in)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as c:
        yield c


def trust(dep: Deployment, sign_in: DevSignIn) -> DevIssuer:
    issuer = DevIssuer.generate("http://test/dev-auth")
    dep.trust(issuer.provider())
    sign_in.issuer = issuer
    return issuer


async def test_a_picked_person_comes_back_with_a_token_the_deployment_accepts(
    client: httpx.AsyncClient, dep: Deployment, sign_in: DevSignIn
) -> None:
    starting = await client.get(f"/dev-auth/sign-in?return_to={quote(BACK)}")
    assert starting.status_code == 503  # no issuer until the server listens
    issuer = trust(dep, sign_in)
    page = await client.get(f"/dev-auth/sign-in?return_to={quote(BACK)}")
    assert page.status_code == 200 and "Development sign-in" in page.text
    assert all(p["name"] in page.text for p in STARTERS)
    r = await client.post(
        "/dev-auth/sign-in", data={"name": "Ann", "email": "", "return_to": BACK + "#old"}
    )
    assert r.status_code == 303
    found = re.fullmatch(re.escape(BACK) + r"#pyconvex_dev_token=(\S+)", r.headers["location"])
    assert found is not None
    token = found.group(1)
    assert issuer.identity(token).email == "ann@example.com"
    who = await client.post(
        "/api/query",
        json={"path": "who:whoami", "args": {}, "format": "json"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert who.json()["value"] == ["Ann", "ann@example.com", "ann@example.com"]
    # Remembered, first in the list next time.
    again = await client.get(f"/dev-auth/sign-in?return_to={quote(BACK)}")
    assert again.text.index("ann@example.com") < again.text.index(STARTERS[0]["email"])
    config = (await client.get("/dev-auth/.well-known/openid-configuration")).json()
    assert config["issuer"] == "http://test/dev-auth"
    assert (await client.get("/dev-auth/.well-known/jwks.json")).json() == issuer.jwks()


async def test_tokens_go_only_to_pages_on_this_machine(
    client: httpx.AsyncClient, dep: Deployment, sign_in: DevSignIn
) -> None:
    trust(dep, sign_in)
    for target in ("", "javascript:alert(1)", "https://evil.example/steal"):
        page = await client.get(f"/dev-auth/sign-in?return_to={quote(target)}")
        assert page.status_code == 400
        posted = await client.post("/dev-auth/sign-in", data={"name": "Ann", "return_to": target})
        assert posted.status_code == 400 and "location" not in posted.headers
    assert "not evil.example" in page.text
    nameless = await client.post("/dev-auth/sign-in", data={"name": " ", "return_to": BACK})
    assert nameless.status_code == 400 and "A name is needed" in nameless.text
    own_host = await client.post(
        "/dev-auth/sign-in", data={"name": "Bo", "return_to": "http://test/"}
    )
    assert own_host.status_code == 303


async def test_without_the_dev_page_there_is_none(dep: Deployment) -> None:
    app = create_app(dep)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as c:
        assert (await c.get(f"/dev-auth/sign-in?return_to={quote(BACK)}")).status_code == 404

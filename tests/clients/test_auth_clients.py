"""The official clients' sign-in flows against a deployment whose auth_config.py names an
issuer the test runs (keys made here, JWKS on 127.0.0.1): npm ConvexClient.setAuth accepted
and refused, ConvexReactClient through a token expiring mid-session, ConvexHttpClient.setAuth,
PyPI set_auth, and pyconvex's own client; a refused token's reason in the client's error and in
the dev console."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
from support.jwt_issuer import Issuer

from pyconvex.dev.launcher import DevServer

pytestmark = pytest.mark.clients

WHO = """
from pyconvex import query


@query
async def whoami(ctx):
    identity = await ctx.auth.get_user_identity()
    return None if identity is None else {"subject": identity.subject, "name": identity.name}
"""


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    with Issuer("RS256") as issuer:
        yield issuer


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, issuer: Issuer) -> Iterator[DevServer]:
    project = tmp_path_factory.mktemp("auth") / "project"
    (project / "convex").mkdir(parents=True)
    (project / "convex" / "__init__.py").write_text("")
    (project / "convex" / "who.py").write_text(WHO)
    provider = issuer.custom_provider(application_id="my-app")
    (project / "convex" / "auth_config.py").write_text(f"providers = [{json.dumps(provider)}]\n")
    with DevServer(project, "--typecheck", "disable") as srv:
        yield srv
    shutil.rmtree(project, ignore_errors=True)


def test_npm_clients_sign_in_are_refused_and_refresh(
    npm: Any, server: DevServer, issuer: Issuer
) -> None:
    good = issuer.token(sub="ada", name="Ada")
    bad = issuer.token(sub="ada", aud="someone-else")
    short = issuer.token(sub="ada", name="Ada", lifetime=3)
    fresh = [issuer.token(sub="ada", name="Ada") for _ in range(4)]
    # The React client gets the short-lived token again when it refreshes ahead of the expiry,
    # so the server's expiry notice is what makes it fetch the fresh ones.
    r = npm("auth.mjs", server, good, bad, short, short, *fresh, timeout=90)
    accepted = r.step("accepted")
    assert accepted["changes"][0] is True and accepted["who"] == {"subject": "ada", "name": "Ada"}
    refused = r.step("refused")
    assert False in refused["changes"] and refused["who"] is None
    expired = r.step("expired")
    # short, short again (the refresh), then a fresh one once the server said it expired.
    assert expired["fetched"] >= 3 and expired["who"]["subject"] == "ada"
    assert False not in expired["changes"]
    http = r.step("http")
    assert http["who"] == {"subject": "ada", "name": "Ada"} and http["anonymous"] is None
    assert "Wrong audience" in http["refusal"]


def test_pypi_client_set_auth(server: DevServer, issuer: Issuer) -> None:
    from convex import ConvexClient

    client = ConvexClient(server.url)
    client.set_auth(issuer.token(sub="bob", name="Bob"))
    assert client.query("who:whoami") == {"subject": "bob", "name": "Bob"}
    client.clear_auth()
    assert client.query("who:whoami") is None


def test_pyconvex_client_set_auth(server: DevServer, issuer: Issuer) -> None:
    from pyconvex.client import ConvexClient

    tokens = iter([issuer.token(sub="cy", name="Cy") for _ in range(5)])
    with ConvexClient(server.url) as client:
        client.set_auth(lambda force_refresh: next(tokens))
        assert client.query("who:whoami") == {"subject": "cy", "name": "Cy"}


def test_a_refused_token_says_why_to_the_client_and_in_the_console(
    server: DevServer, issuer: Issuer
) -> None:
    import httpx
    from websockets.sync.client import connect

    start = server.output.mark()
    stale = issuer.token(sub="ada", lifetime=-3600)
    r = httpx.post(
        f"{server.url}/api/query",
        json={"path": "who:whoami", "args": {}, "format": "json"},
        headers={"Authorization": f"Bearer {stale}"},
    )
    assert r.status_code == 401 and "The token has expired" in r.json()["message"]
    server.output.wait_for(lambda line: "sign-in refused" in line and "expired" in line, start)
    elsewhere = issuer.token(sub="ada", aud="another-app")
    with connect(server.url.replace("http", "ws", 1) + "/api/sync", close_timeout=1) as ws:
        ws.send(json.dumps({"type": "Connect", "sessionId": "s", "connectionCount": 0,
                            "lastCloseReason": None, "clientTs": 0}))  # fmt: skip
        ws.send(json.dumps({"type": "Authenticate", "baseVersion": 0, "tokenType": "User",
                            "value": elsewhere}))  # fmt: skip
        error = json.loads(ws.recv(timeout=10))
    assert error["type"] == "AuthError" and "Wrong audience" in error["error"]
    server.output.wait_for(
        lambda line: "sign-in refused" in line and "Wrong audience" in line, start
    )

"""The official clients' sign-in flows against a deployment whose auth_config.py names an
issuer the test runs (keys made here, JWKS on 127.0.0.1): npm ConvexClient.setAuth accepted
and refused, ConvexReactClient through a token expiring mid-session, PyPI set_auth, and
pyconvex's own client."""

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

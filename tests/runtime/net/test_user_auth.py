"""Users signed in by auth_config.py's providers, on a live server: the WebSocket Authenticate
(identity in queries, mutations and actions; refusals and expiry as AuthError then a close;
frames sent while the keys are fetched run as the new user), HTTP bearer tokens on the HTTP API
and on HTTP actions, and a bad config refused at push naming its entry."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from support.deployment import DeploymentFactory
from support.jwt_issuer import Issuer
from support.live_sync import LiveServer, RawSync, http_call, live_server

from pyconvex.runtime.functions.deployment import Deployment
from pyconvex.runtime.functions.loader import ModuleLoadError

WHOAMI = """
from pyconvex import action, mutation, query
from starlette.responses import JSONResponse
from pyconvex import HttpRouter


async def _who(ctx):
    identity = await ctx.auth.get_user_identity()
    if identity is None:
        return None
    return {"subject": identity.subject, "name": identity.name, "token": identity.token_identifier}


@query
async def whoami(ctx):
    return await _who(ctx)


@mutation
async def note(ctx):
    await ctx.db.insert("notes", {"by": (await _who(ctx) or {}).get("subject", "nobody")})
    return await _who(ctx)


@action
async def act(ctx):
    return await _who(ctx)
"""
HTTP = """
from pyconvex import HttpRouter
from starlette.responses import JSONResponse

http = HttpRouter()


@http.route("/me", method="GET")
async def me(ctx, request):
    identity = await ctx.auth.get_user_identity()
    return JSONResponse(None if identity is None else identity.subject)
"""


@pytest.fixture
def issuer() -> Iterator[Issuer]:
    with Issuer("RS256") as issuer:
        yield issuer


@pytest.fixture
async def served(
    deployment: DeploymentFactory, issuer: Issuer
) -> AsyncIterator[tuple[Deployment, LiveServer]]:
    auth_config = f"providers = [{json.dumps(issuer.custom_provider())}]\n"
    dep = await deployment({"who.py": WHOAMI, "http.py": HTTP, "auth_config.py": auth_config})
    async with live_server(dep) as server:
        yield dep, server


async def authenticate(client: RawSync, token: str) -> None:
    await client.send(
        {
            "type": "Authenticate",
            "baseVersion": client.identity,
            "tokenType": "User",
            "value": token,
        }
    )
    client.identity += 1


async def test_a_signed_in_socket_runs_everything_as_the_user(
    served: tuple[Deployment, LiveServer], issuer: Issuer
) -> None:
    _, server = served
    client = await RawSync.open(server.ws_url)
    await client.add(1, "who:whoami")
    first = await client.query_set_answer()
    assert first["modifications"][0]["value"] is None
    await authenticate(client, issuer.token(sub="ada", name="Ada"))
    # Sent before the keys were fetched: held, then run as Ada.
    await client.mutation(1, "who:note", {})
    await client.action(2, "who:act", {})
    answers: dict[str, Any] = {}
    reidentified = False
    while len(answers) < 2 or not reidentified:
        frame = await client.recv()
        if frame["type"] in ("MutationResponse", "ActionResponse"):
            answers[frame["type"]] = frame
        elif frame["type"] == "Transition" and frame["endVersion"]["identity"] == 1:
            reidentified = True  # the subscription re-ran as Ada
            for mod in frame["modifications"]:
                assert mod["value"]["subject"] == "ada"
    mutation = answers["MutationResponse"]
    assert mutation["success"] and mutation["result"]["subject"] == "ada"
    assert mutation["result"]["token"] == f"{issuer.url}|ada"
    assert answers["ActionResponse"]["result"]["name"] == "Ada"
    await client.close()


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda i: i.token(lifetime=-3600), "expired"),
        (lambda i: i.token(aud="other"), "Wrong audience"),
        (lambda i: i.token(iss="https://evil.example.com"), "Wrong issuer"),
        (lambda i: "garbage", "not a well-formed JWT"),
    ],
)
async def test_a_refused_token_is_an_auth_error_then_a_close(
    served: tuple[Deployment, LiveServer], issuer: Issuer, make: Any, reason: str
) -> None:
    _, server = served
    client = await RawSync.open(server.ws_url)
    await authenticate(client, make(issuer))
    error = await client.recv_type("AuthError")
    assert reason in error["error"]
    assert error["baseVersion"] == 0 and error["authUpdateAttempted"] is True
    code, _ = await client.closed()
    assert code == 1000


async def test_a_token_expiring_mid_session_says_so(
    served: tuple[Deployment, LiveServer], issuer: Issuer
) -> None:
    _, server = served
    client = await RawSync.open(server.ws_url)
    await authenticate(client, issuer.token(lifetime=1))
    error = await client.recv_type("AuthError", timeout=15)
    assert error["authUpdateAttempted"] is False and "expired" in error["error"]
    assert error["baseVersion"] == 1
    await client.closed()


async def test_bearer_tokens_over_http_and_on_http_actions(
    served: tuple[Deployment, LiveServer], issuer: Issuer, caplog: pytest.LogCaptureFixture
) -> None:
    dep, server = served
    bearer = {"Authorization": f"Bearer {issuer.token(sub='bob')}"}
    r = await http_call(server.url, "query", "who:whoami", {}, headers=bearer)
    assert r.json()["value"]["subject"] == "bob"
    r = await http_call(server.url, "query", "who:whoami", {})
    assert r.json()["value"] is None
    bad = {"Authorization": f"Bearer {issuer.token(lifetime=-3600)}"}
    r = await http_call(server.url, "query", "who:whoami", {}, headers=bad)
    assert r.status_code == 401 and "expired" in r.json()["message"]
    async with httpx.AsyncClient() as http:
        r = await http.get(f"{dep.site_url}/me", headers=bearer)
        assert r.json() == "bob"
        # An HTTP action runs with no user then (a webhook's own Bearer secret is no token).
        with caplog.at_level(logging.INFO, logger="pyconvex"):
            r = await http.get(f"{dep.site_url}/me", headers=bad)
            assert r.status_code == 200 and r.json() is None
            # ... and the console says why a sign-in token was refused; a webhook's own
            # secret (not a JWT) is no news.
            await http.get(f"{dep.site_url}/me", headers={"Authorization": "Bearer whsec_1"})
    said = [(r.levelno, r.getMessage()) for r in caplog.records if "Bearer token" in r.message]
    assert [level for level, _ in said] == [logging.WARNING, logging.INFO]
    assert "HTTP action" in said[0][1] and "expired" in said[0][1]


async def test_a_bad_auth_config_is_refused_naming_the_entry(
    deployment: DeploymentFactory,
) -> None:
    bad = 'providers = [{"domain": "https://ok.example.com", "application_id": "a"}, {"x": 1}]\n'
    with pytest.raises(ModuleLoadError, match=r"auth_config.py: providers\[1\]"):
        await deployment({"who.py": WHOAMI, "auth_config.py": bad})


async def test_scheduled_functions_run_with_no_identity(
    served: tuple[Deployment, LiveServer], issuer: Issuer
) -> None:
    dep, _ = served
    result = await dep.run_mutation("who:note", {})
    assert result.value is None
    await asyncio.sleep(0)


async def test_providers_change_on_reload(
    served: tuple[Deployment, LiveServer], issuer: Issuer, tmp_path: Any
) -> None:
    from pyconvex.runtime.auth.tokens import TokenRefused, verify_fetching
    from pyconvex.runtime.functions.loader import load_functions

    dep, _ = served
    token = issuer.token(sub="ada")
    assert (await verify_fetching(dep.token_verifier, token)).identity.subject == "ada"
    functions_dir = dep.loaded.functions_dir
    assert functions_dir is not None
    (functions_dir / "auth_config.py").write_text(
        'providers = [{"domain": "https://other.example.com", "application_id": "x"}]\n'
    )
    dep.swap(load_functions(functions_dir, previous=dep.loaded), dep.schema)
    with pytest.raises(TokenRefused, match="Wrong issuer"):
        await verify_fetching(dep.token_verifier, token)

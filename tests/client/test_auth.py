"""Auth on the client: the admin key (internal functions, acting as a user, a refused key), and
set_auth's AuthError flow (PROTOCOL.md §7) against a deployment that refuses user tokens."""

from __future__ import annotations

import asyncio
import base64
import json
import time

import pytest

from pyconvex.client import AsyncConvexClient, AuthenticationError, ConvexClient
from pyconvex.client.auth import AuthManager, token_lifetime
from pyconvex.dev.launcher import DevServer
from pyconvex.protocol import Authenticate, StateVersion
from pyconvex.protocol.client_side import AuthError, Transition


async def test_admin_auth_calls_internal_functions_and_acts_as_a_user(server: DevServer) -> None:
    async with AsyncConvexClient(server.url) as client:
        client.set_admin_auth(server.admin_key)
        assert await client.query("messages:secret") == "internal ok"
        assert await client.query("messages:whoami") is None
        client.set_admin_auth(server.admin_key, acting_as={"subject": "u9", "name": "Zed"})
        sub = client.subscribe("messages:whoami")
        assert await sub.first() == {"subject": "u9", "name": "Zed"}
        client.clear_auth()
        async with asyncio.timeout(30):
            async for who in sub:
                if who is None:
                    break


async def test_a_refused_admin_key_fails_calls_until_new_credentials(server: DevServer) -> None:
    async with AsyncConvexClient(server.url) as client:
        sub = client.subscribe("messages:whoami")
        await sub.first()
        client.set_admin_auth("not-the-key")
        with pytest.raises(AuthenticationError, match="refused the admin key"):
            async with asyncio.timeout(30):
                async for _ in sub:
                    pass
        with pytest.raises(AuthenticationError):
            await client.query("messages:secret")
        client.set_admin_auth(server.admin_key)
        assert await asyncio.wait_for(client.query("messages:secret"), 30) == "internal ok"


def _jwt(claims: dict[str, object]) -> str:
    def part(obj: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none'})}.{part(claims)}.sig"


def test_refused_user_tokens_are_refetched_then_dropped(server: DevServer) -> None:
    # This deployment has no auth providers: it refuses every user token with AuthError and
    # closes the socket. The client fetches a fresh token (force_refresh) and tries again;
    # after two fresh tokens are refused it goes on unauthenticated and says so.
    calls: list[bool] = []
    changes: list[bool] = []

    def fetch_token(force_refresh: bool) -> str:
        calls.append(force_refresh)
        now = int(time.time())
        return _jwt({"sub": "u1", "iat": now, "exp": now + 3600, "n": len(calls)})

    with ConvexClient(server.url) as client:
        client.set_auth(fetch_token, on_change=changes.append)
        deadline = time.monotonic() + 30
        while not changes and time.monotonic() < deadline:
            client.query("messages:whoami", timeout=30)
        assert changes == [False]
        assert calls == [False, True, True]
        assert client.query("messages:whoami", timeout=30) is None
        assert client.connection_state().last_close_reason is not None


async def test_no_fresh_token_means_signed_out(server: DevServer) -> None:
    changes: list[bool] = []
    tokens = iter(["cached-token"])

    async def fetch_token(force_refresh: bool) -> str | None:
        return next(tokens, None)

    async with AsyncConvexClient(server.url) as client:
        await client.set_auth(fetch_token, on_change=changes.append)
        async with asyncio.timeout(30):
            while not changes:
                await client.query("messages:whoami")
        assert changes == [False]
        assert await client.query("messages:whoami") is None


class _Host:
    def __init__(self) -> None:
        self.sent: list[Authenticate] = []
        self.reconnects: list[str] = []

    def send_auth(self, message: Authenticate) -> None:
        self.sent.append(message)

    def reconnect(self, reason: str) -> None:
        self.reconnects.append(reason)

    def auth_failed(self, error: AuthenticationError) -> None:
        raise AssertionError(error)


async def test_a_confirmed_cached_token_is_replaced_by_a_fresh_one() -> None:
    now = int(time.time())
    cached = _jwt({"iat": now - 100, "exp": now + 3600, "v": "cached"})
    fresh = _jwt({"iat": now, "exp": now + 3600, "v": "fresh"})
    changes: list[bool] = []

    async def fetch(force: bool) -> str:
        return fresh if force else cached

    host = _Host()
    auth = AuthManager(host)
    await auth.set_user(fetch, changes.append)
    assert [m.value for m in host.sent] == [cached]
    confirm = Transition(StateVersion(1, 0, 5), StateVersion(1, 1, 5), ())
    auth.on_transition(confirm)
    assert changes == [True]
    await asyncio.sleep(0.05)  # the fresh token's fetch ran on the loop
    assert [m.value for m in host.sent] == [cached, fresh]
    # A stale AuthError (about an older Authenticate) is ignored.
    auth.on_auth_error(AuthError("expired", 0, True), identity_version=3)
    assert host.reconnects == []
    auth.close()


def test_token_lifetime_reads_iat_and_exp() -> None:
    assert token_lifetime(_jwt({"iat": 10, "exp": 70})) == (10.0, 70.0)
    assert token_lifetime(_jwt({"iat": 10, "exp": 11})) is None
    assert token_lifetime(_jwt({"exp": 70})) is None
    assert token_lifetime("not a jwt") is None

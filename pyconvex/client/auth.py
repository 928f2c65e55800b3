"""Who the client is: no one, a user (a JWT from ``fetch_token``), or an admin (PROTOCOL.md §7).

``set_auth(fetch_token)`` follows the npm client: ``fetch_token(False)`` may return a cached
token; once the server confirms it (a Transition that moves the identity version), a fresh one
is fetched with ``fetch_token(True)`` and sent if it differs, and the next refresh is scheduled
10 s before the token's ``exp``. On an ``AuthError`` the socket closes, a fresh token is fetched
before the next socket opens and sent on it; with no token (or after two fresh tokens were
refused) the client goes on unauthenticated and ``on_change(False)`` is called. An admin key
the deployment refuses is final: :class:`AuthenticationError` for every call until new
credentials are set.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import inspect
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from pyconvex.client.errors import AuthenticationError
from pyconvex.protocol import Authenticate
from pyconvex.protocol.client_side import AuthError, Transition

_log = logging.getLogger("pyconvex.client")

#: ``fetch_token(force_refresh)`` -> a JWT, or None when the user is signed out. May be async.
FetchToken = Callable[[bool], "str | Awaitable[str | None] | None"]
#: ``on_change(is_authenticated)``, called when the server confirms or drops the token.
OnAuthChange = Callable[[bool], Any]

REFRESH_BEFORE_EXPIRY_S = 10.0
MAX_FAILED_FRESH_TOKENS = 2


class AuthHost(Protocol):
    def send_auth(self, message: Authenticate) -> None:
        """Send Authenticate now if a socket is open (its base version filled in)."""

    def reconnect(self, reason: str) -> None: ...

    def auth_failed(self, error: AuthenticationError) -> None: ...


class AuthManager:
    def __init__(self, host: AuthHost) -> None:
        self._host = host
        self.mode: str | None = None  # None | "user" | "admin"
        self.token: str | None = None
        self._acting_as: Any = None
        self._fetch: FetchToken | None = None
        self._on_change: OnAuthChange | None = None
        self._fresh = False  # the token came from fetch_token(True)
        self.confirmed = False
        self._failed_fresh = 0
        self._refetch: asyncio.Task[None] | None = None
        self._refresh: asyncio.TimerHandle | None = None
        self._generation = 0  # bumped by every set/clear: late fetches are dropped

    # -- what a new socket sends -----------------------------------------------------------

    def message(self) -> Authenticate | None:
        """The Authenticate for the current credentials (base version 0; the host sets it)."""
        if self.mode == "admin":
            return Authenticate(0, "Admin", self.token, self._acting_as)
        if self.mode == "user" and self.token is not None:
            return Authenticate(0, "User", self.token)
        return None

    async def before_open(self) -> None:
        """Wait for a token being fetched again after an AuthError."""
        task = self._refetch
        if task is not None and not task.done():
            with contextlib.suppress(Exception):
                await asyncio.shield(task)

    # -- setting credentials ---------------------------------------------------------------

    async def set_user(self, fetch_token: FetchToken, on_change: OnAuthChange | None) -> None:
        self._reset()
        generation = self._generation
        self.mode, self._fetch, self._on_change = "user", fetch_token, on_change
        token = await self._call_fetch(False)
        if generation != self._generation:
            return
        if token is None:
            self._give_up(notify=True)
            return
        self._use_token(token, fresh=False)

    def set_admin(self, key: str, acting_as: Any) -> None:
        self._reset()
        self.mode, self.token, self._acting_as = "admin", key, acting_as
        message = self.message()
        assert message is not None
        self._host.send_auth(message)

    def clear(self) -> None:
        had = self.mode is not None
        self._reset()
        if had:
            self._host.send_auth(Authenticate(0, "None", None))

    def close(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._generation += 1
        for task in (self._refetch,):
            if task is not None:
                task.cancel()
        if self._refresh is not None:
            self._refresh.cancel()
        self._refetch = self._refresh = None
        self.mode = self.token = self._acting_as = None
        self._fetch = self._on_change = None
        self.confirmed = self._fresh = False
        self._failed_fresh = 0

    def _use_token(self, token: str, *, fresh: bool) -> None:
        self.token, self._fresh, self.confirmed = token, fresh, False
        self._host.send_auth(Authenticate(0, "User", token))

    # -- the server's answers --------------------------------------------------------------

    def on_transition(self, transition: Transition) -> None:
        if transition.end.identity <= transition.start.identity:
            return
        if self.mode != "user" or self.confirmed or self.token is None:
            return
        self.confirmed = True
        self._failed_fresh = 0
        self._notify(True)
        if self._fresh:
            self._schedule_refresh(self.token)
        else:  # a possibly cached token: get a fresh one right away
            self._start_refetch(send_if_changed=True)

    def on_auth_error(self, error: AuthError, identity_version: int) -> None:
        if error.base_version is not None and error.base_version + 1 < identity_version:
            return  # about an Authenticate older than the last one sent
        if not error.auth_update_attempted and self.token is not None and not self.confirmed:
            return  # an expiry notice while a new token waits for confirmation
        if self.mode == "admin":
            message = f"The deployment refused the admin key: {error.error}"
            self._reset()
            self._host.auth_failed(AuthenticationError(message))
            return
        if self.mode != "user":
            return
        _log.info("the deployment refused the auth token (%s); fetching a fresh one", error.error)
        if self._fresh:
            self._failed_fresh += 1
        if self._failed_fresh >= MAX_FAILED_FRESH_TOKENS:
            _log.warning("the deployment refused a fresh auth token twice; going on without")
            self._give_up(notify=True)
            self._host.reconnect("AuthError")
            return
        self.token = None  # not sent again: the next socket waits for the fresh one
        self._start_refetch(send_if_changed=False)
        self._host.reconnect("AuthError")

    # -- fetching --------------------------------------------------------------------------

    def _start_refetch(self, *, send_if_changed: bool) -> None:
        if self._refetch is not None and not self._refetch.done():
            return
        self._refetch = asyncio.get_running_loop().create_task(
            self._refetch_fresh(send_if_changed, self._generation)
        )

    async def _refetch_fresh(self, send_if_changed: bool, generation: int) -> None:
        previous = self.token
        try:
            token = await self._call_fetch(True)
        except Exception:
            _log.exception("fetch_token(force_refresh=True) raised")
            token = None
        if generation != self._generation:
            return
        if token is None:
            self._give_up(notify=True)
            if self.mode is None and previous is not None and send_if_changed:
                self._host.send_auth(Authenticate(0, "None", None))
            return
        if send_if_changed and token == previous:
            self._fresh = True
            self._schedule_refresh(token)
            return
        self._use_token(token, fresh=True)

    async def _call_fetch(self, force_refresh: bool) -> str | None:
        fetch = self._fetch
        if fetch is None:
            return None
        if inspect.iscoroutinefunction(fetch):
            result: Any = await fetch(force_refresh)
        else:  # a blocking fetcher (HTTP) must not stall the loop
            result = await asyncio.to_thread(fetch, force_refresh)
            if inspect.isawaitable(result):
                result = await result
        if result is not None and not isinstance(result, str):
            raise TypeError(f"fetch_token must return a JWT string or None, not {result!r}")
        return result or None

    def _schedule_refresh(self, token: str) -> None:
        if self._refresh is not None:
            self._refresh.cancel()
            self._refresh = None
        lifetime = token_lifetime(token)
        if lifetime is None:
            return
        delay = max(lifetime[1] - time.time() - REFRESH_BEFORE_EXPIRY_S, 0.0)
        generation = self._generation
        self._refresh = asyncio.get_running_loop().call_later(
            delay, lambda: self._refresh_due(generation)
        )

    def _refresh_due(self, generation: int) -> None:
        self._refresh = None
        if generation == self._generation and self.mode == "user":
            self._start_refetch(send_if_changed=False)

    def _give_up(self, *, notify: bool) -> None:
        on_change = self._on_change
        self._reset()
        if notify and on_change is not None:
            _call(on_change, False)

    def _notify(self, authenticated: bool) -> None:
        if self._on_change is not None:
            _call(self._on_change, authenticated)


_background: set[asyncio.Future[Any]] = set()


def _call(callback: OnAuthChange, authenticated: bool) -> None:
    try:
        outcome = callback(authenticated)
        if inspect.isawaitable(outcome):
            _background.add(task := asyncio.ensure_future(outcome))
            task.add_done_callback(_background.discard)
    except Exception:
        _log.exception("the auth on_change callback raised")


def token_lifetime(token: str) -> tuple[float, float] | None:
    """``(iat, exp)`` of a JWT, read without checking it; None when it has no usable pair
    (both present and more than 2 s apart), in which case no refresh is scheduled."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        iat, exp = float(claims["iat"]), float(claims["exp"])
    except (IndexError, KeyError, TypeError, ValueError):
        return None
    return (iat, exp) if exp - iat > 2 else None

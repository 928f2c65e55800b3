"""A sync session's user sign-in: ``Authenticate{tokenType: "User"}`` (PROTOCOL.md §7).

The token is checked against ``auth_config.py``'s providers (:mod:`pyconvex.runtime.auth.tokens`).
When the provider's keys must be fetched first (the first token, or a rotated key), the
session's later frames are held, in order, until the answer is known, so a mutation sent right
after ``setAuth`` runs as the user it was sent as. A refused token gets ``AuthError`` (the
reason, ``authUpdateAttempted: true``) and the socket is closed, as Convex does; a token that
was accepted and then expires gets ``AuthError`` with ``authUpdateAttempted: false`` when it
expires (the client fetches a fresh one), then the close.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from pyconvex.protocol import Authenticate, auth_error
from pyconvex.runtime.auth.tokens import NeedKeys, TokenRefused, TokenVerifier, Verified

_log = logging.getLogger("pyconvex.sync")

CLOSE_NORMAL = 1000
#: Frames held while keys are fetched, beyond which the socket's input pauses.
HOLD_PAUSE = 256


class AuthSink(Protocol):
    def send(self, text: str) -> None: ...
    def close(self, code: int, reason: str) -> None: ...
    def pause_input(self) -> None: ...
    def resume_input(self) -> None: ...


class AuthSession(Protocol):
    session_id: str | None
    recv_identity: int
    stopped: bool

    def stop(self) -> None: ...
    def dispatch_held(self, message: object) -> None: ...


class UserSignIn:
    """The user-token half of one session's ``Authenticate`` handling."""

    def __init__(self, session: AuthSession, sink: AuthSink, deployment: Any) -> None:
        self._session = session
        self._sink = sink
        self._deployment = deployment
        self._held: list[object] | None = None
        self._paused = False
        self._expiry: asyncio.TimerHandle | None = None
        self._fetching: asyncio.Future[None] | None = None

    def hold(self, message: object) -> bool:
        """Keep ``message`` for later if frames are being held (True: it was kept)."""
        if self._held is None:
            return False
        self._held.append(message)
        if len(self._held) > HOLD_PAUSE and not self._paused:
            self._paused = True
            self._sink.pause_input()
        return True

    def check(self, message: Authenticate, then: Callable[[object], None]) -> None:
        """Check the token; ``then(identity)`` goes on with the Authenticate once accepted
        (now, or after the keys arrive); a refusal closes the socket."""
        verifier: TokenVerifier | None = getattr(self._deployment, "token_verifier", None)
        if verifier is None:
            verifier = TokenVerifier([])
        try:
            verified = verifier.verify(message.value or "")
        except NeedKeys as need:
            self._held = []
            self._fetching = asyncio.ensure_future(self._after_keys(verifier, need, message, then))
            return
        except TokenRefused as refused:
            self._refuse(refused.reason)
            return
        self._accept(verified, then)

    async def _after_keys(
        self,
        verifier: TokenVerifier,
        need: NeedKeys,
        message: Authenticate,
        then: Callable[[object], None],
    ) -> None:
        try:
            await verifier.fetch_keys(need.provider)
        except Exception:  # fetch_keys reports failures through verify; never kill the socket
            _log.exception("fetching the keys of the %s failed", need.provider.label)
        held, self._held = self._held or [], None
        if self._paused:
            self._paused = False
            self._sink.resume_input()
        if self._session.stopped:
            return
        try:
            verified = verifier.verify(message.value or "")
        except (TokenRefused, NeedKeys) as e:
            self._refuse(e.reason if isinstance(e, TokenRefused) else str(e))
            return
        self._accept(verified, then)
        for i, held_message in enumerate(held):
            if self._session.stopped:
                return
            if self._held is not None:  # another token is waiting for keys: keep the order
                self._held.extend(held[i:])
                return
            self._session.dispatch_held(held_message)

    def _accept(self, verified: Verified, then: Callable[[object], None]) -> None:
        then(verified.identity)
        self.cancel_expiry()
        if verified.expires_at is not None:
            version = self._session.recv_identity
            delay = max(verified.expires_at - time.time(), 0.5)
            self._expiry = asyncio.get_running_loop().call_later(delay, self._expired, version)

    def cancel_expiry(self) -> None:
        """Forget the running token's expiry (a new Authenticate replaces it)."""
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None

    def _expired(self, version: int) -> None:
        self._expiry = None
        session = self._session
        if session.stopped or session.recv_identity != version:
            return
        _log.info("session %s: the user's token expired", session.session_id)
        self._sink.send(
            auth_error("The token expired.", session.recv_identity, auth_update_attempted=False)
        )
        self._sink.close(CLOSE_NORMAL, "AuthError: the token expired")
        session.stop()

    def _refuse(self, reason: str) -> None:
        session = self._session
        _log.warning("sign-in refused (session %s): %s", session.session_id, reason)
        self._sink.send(auth_error(reason, session.recv_identity))
        self._sink.close(CLOSE_NORMAL, "AuthError: the token was refused")
        session.stop()

"""Who sent a request, and with which rights: the admin key checked, an identity acted as.

caller = admin_caller(credential, deployment.admin_key)   # raises AdminAuthError
caller.admin, caller.identity
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from pyconvex.errors import PyconvexError
from pyconvex.runtime.auth.admin_key import is_admin_key
from pyconvex.runtime.auth.identity import UserIdentity, identity_from_json


class AdminAuthError(PyconvexError):
    """An admin credential was refused: answered with HTTP 401 ``{"code", "message"}``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Caller:
    """Who sent a request: ``admin`` callers may run internal functions; ``identity`` is the
    user a request acts as (None: no user)."""

    admin: bool = False
    identity: UserIdentity | None = None


PUBLIC = Caller()


def admin_caller(credential: str, admin_key: str | None) -> Caller:
    """The caller of an ``Authorization: Convex <credential>`` header: ``<admin key>`` or
    ``<admin key>:<base64 of the identity JSON>``. Raises :class:`AdminAuthError`."""
    key, _, acting_as = credential.strip().partition(":")
    if admin_key is None:
        raise AdminAuthError(
            "AdminKeyNotConfigured",
            "The request carries an admin key, but this deployment has none (it runs without a "
            "data directory); drop the Authorization header to call public functions.",
        )
    if not is_admin_key(key, admin_key):
        raise AdminAuthError(
            "BadAdminKey",
            "The admin key is not this deployment's. Use the key in .pyconvex/admin_key of the "
            "project `pyconvex dev` serves (or pass --admin-key).",
        )
    if not acting_as:
        return Caller(admin=True)
    try:
        claims = json.loads(base64.b64decode(acting_as + "=" * (-len(acting_as) % 4)))
        identity = identity_from_json(claims)
    except (ValueError, binascii.Error) as e:
        raise AdminAuthError(
            "BadActingAsIdentity",
            f"The identity after the admin key must be base64 of a JSON object of claims: {e}",
        ) from None
    return Caller(admin=True, identity=identity)


def admin_identity(key: str | None, acting_as: Any, admin_key: str | None) -> UserIdentity | None:
    """Check an admin ``Authenticate`` on the sync protocol (``tokenType: "Admin"``): the user
    it acts as (``impersonating``), or None. Raises :class:`AdminAuthError`."""
    admin_caller(key or "", admin_key)
    if acting_as is None:
        return None
    try:
        return identity_from_json(acting_as)
    except ValueError as e:
        raise AdminAuthError("BadActingAsIdentity", str(e)) from None

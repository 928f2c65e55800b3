"""Who calls a function: :class:`UserIdentity`, as ``ctx.auth.get_user_identity()`` returns it.

One class for the whole project: the sync session, the HTTP API, the admin routes and
``pyconvex.testing`` all build this one. It hashes by value, so identical subscriptions of the
same user are shared.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

DEFAULT_ISSUER = "https://pyconvex.test"  # as pyconvex.testing's TestIdentity

# The OIDC claims Convex's UserIdentity names, camelCase as on the wire.
_STANDARD_CLAIMS = (
    "tokenIdentifier", "subject", "issuer", "name", "givenName", "familyName", "nickname",
    "preferredUsername", "profileUrl", "pictureUrl", "email", "emailVerified", "gender",
    "birthday", "timezone", "language", "phoneNumber", "phoneNumberVerified", "address",
    "updatedAt",
)  # fmt: skip


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name)


_BY_SNAKE = {_snake(c): c for c in _STANDARD_CLAIMS}


class UserIdentity:
    """Who is calling, as ``await ctx.auth.get_user_identity()`` returns it.

    Attributes are the snake_case twins of Convex's ``UserIdentity`` fields
    (``token_identifier``, ``subject``, ``issuer``, ``name``, ``email``, ``picture_url``, ...;
    None when the token lacks them); ``claims`` holds every claim as sent, custom ones included
    (also readable as ``identity["org_id"]``)::

        identity = await ctx.auth.get_user_identity()
        if identity is None:
            raise ConvexError("Not signed in")
        owner = identity.token_identifier
    """

    __slots__ = ("_key", "claims")

    def __init__(self, claims: Mapping[str, Any]) -> None:
        out = {_BY_SNAKE.get(k, k): value for k, value in claims.items()}
        if not isinstance(out.get("issuer"), str):
            out["issuer"] = DEFAULT_ISSUER
        if not isinstance(out.get("subject"), str):
            # Stable for the same claims, so identical subscriptions stay shared.
            digest = hashlib.sha256(json.dumps(out, sort_keys=True).encode()).hexdigest()
            out["subject"] = f"user-{digest[:16]}"
        if not isinstance(out.get("tokenIdentifier"), str):
            out["tokenIdentifier"] = f"{out['issuer']}|{out['subject']}"
        self.claims: dict[str, Any] = out
        self._key = json.dumps(out, sort_keys=True, default=str)

    def __getattr__(self, name: str) -> Any:
        claims = object.__getattribute__(self, "claims")
        wire = _BY_SNAKE.get(name)
        if wire is not None:
            return claims.get(wire)
        if name in claims:
            return claims[name]
        raise AttributeError(
            f"UserIdentity has no claim {name!r}; claims: {', '.join(sorted(claims))}."
        )

    def __getitem__(self, claim: str) -> Any:
        return self.claims[_BY_SNAKE.get(claim, claim)]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, UserIdentity) and other._key == self._key

    def __hash__(self) -> int:
        return hash(self._key)

    def __repr__(self) -> str:
        return f"UserIdentity(token_identifier={self.claims['tokenIdentifier']!r})"


def identity_from_json(obj: Any) -> UserIdentity:
    """A :class:`UserIdentity` from a JSON object of claims (raises ValueError otherwise)."""
    if not isinstance(obj, dict) or not all(isinstance(k, str) for k in obj):
        raise ValueError(
            'An identity must be a JSON object of claims, e.g. {"subject": "user1", "name": '
            f'"Ann"}}; got {type(obj).__name__}.'
        )
    return UserIdentity(obj)

"""Checking a user's JWT against the providers of ``auth_config.py`` (PyJWT does the crypto).

    verifier = TokenVerifier(providers)
    identity = verifier.verify(token)          # UserIdentity; raises TokenRefused / NeedKeys
    await verifier.fetch_keys(needed)           # after NeedKeys: the provider's JWKS, then again

A token is accepted only if its ``iss`` names a provider, its ``alg`` is the one that provider
pins (never ``none``, never an HMAC), a key of the provider's JWKS with its ``kid`` verifies the
signature, ``aud`` contains the provider's application id (when set), and ``exp`` / ``nbf`` /
``iat`` hold within :data:`LEEWAY_S` of now. Each refusal says which of these failed.

Keys: a provider's JWKS (its URL, or the ``jwks_uri`` of the issuer's OpenID configuration) is
fetched with a timeout, cached for :data:`JWKS_TTL_S`, and fetched again when a token names a
``kid`` it lacks (key rotation) — at most once per :attr:`TokenVerifier.refresh_interval_s`,
and one fetch at a time per provider, however many tokens wait for it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt

from pyconvex.errors import PyconvexError
from pyconvex.runtime.auth.identity import UserIdentity
from pyconvex.runtime.auth.providers import Provider

#: Clock skew tolerated on exp / nbf / iat.
LEEWAY_S = 60.0
JWKS_TTL_S = 3600.0
FETCH_TIMEOUT_S = 5.0
#: The longest token looked at (Convex's limit on an Authenticate message is of this order).
MAX_TOKEN_CHARS = 16 * 1024

# OpenID Connect claim -> the camelCase name Convex's UserIdentity uses.
_OIDC_CLAIMS = {
    "name": "name",
    "given_name": "givenName",
    "family_name": "familyName",
    "nickname": "nickname",
    "preferred_username": "preferredUsername",
    "profile": "profileUrl",
    "picture": "pictureUrl",
    "email": "email",
    "email_verified": "emailVerified",
    "gender": "gender",
    "birthdate": "birthday",
    "zoneinfo": "timezone",
    "locale": "language",
    "phone_number": "phoneNumber",
    "phone_number_verified": "phoneNumberVerified",
    "address": "address",
    "updated_at": "updatedAt",
}
_REGISTERED = {"iss", "sub", "aud", "exp", "nbf", "iat", "jti"}


class TokenRefused(PyconvexError):
    """The token is not accepted; ``reason`` says why (sent to the client and logged)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NeedKeys(PyconvexError):
    """The provider's keys must be fetched before the token can be checked."""

    def __init__(self, provider: Provider) -> None:
        super().__init__(f"fetching the keys of the {provider.label}")
        self.provider = provider


@dataclass
class _Keys:
    by_kid: dict[str | None, Any] = field(default_factory=dict)
    fetched_at: float = 0.0
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Verified:
    identity: UserIdentity
    #: When the token expires (seconds since the epoch), if it says.
    expires_at: float | None


class TokenVerifier:
    """Checks tokens against ``providers``; holds their keys between calls."""

    refresh_interval_s = 10.0

    def __init__(self, providers: list[Provider]) -> None:
        self.providers = providers
        self._keys: dict[int, _Keys] = {}  # by id() of the provider
        self._fetching: dict[int, asyncio.Future[None]] = {}
        for p in providers:
            if p.jwks is not None:
                self._keys[id(p)] = _keys_of(p.jwks, p, time.monotonic())

    # -- checking ------------------------------------------------------------------------
    def verify(self, token: str) -> Verified:
        """The identity ``token`` proves; raises :class:`TokenRefused`, or :class:`NeedKeys`
        when the right provider's keys have to be fetched first."""
        if not self.providers:
            raise TokenRefused(
                "This deployment has no sign-in providers: add them to `providers` in "
                "convex/auth_config.py, or stop sending a token."
            )
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS:
            raise TokenRefused("The token is not a JWT (empty, or longer than 16 KiB).")
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as e:
            raise TokenRefused(f"The token is not a well-formed JWT: {e}.") from None
        issuer = unverified.get("iss")
        candidates = [p for p in self.providers if p.issuer == str(issuer).rstrip("/")]
        if not candidates:
            known = ", ".join(sorted({p.issuer for p in self.providers}))
            raise TokenRefused(
                f"Wrong issuer: the token's iss is {_show(issuer)}, which is not a provider "
                f"of this deployment ({known})."
            )
        alg = header.get("alg")
        provider = next((p for p in candidates if p.algorithm == alg), None)
        if provider is None:
            raise TokenRefused(
                f"The token is signed with alg {_show(alg)}, but the provider {candidates[0].issuer} "
                f"accepts only {candidates[0].algorithm}."
            )
        keys = self._keys.get(id(provider))
        now = time.monotonic()
        if keys is None or (provider.jwks is None and now - keys.fetched_at > JWKS_TTL_S):
            raise NeedKeys(provider)
        kid = header.get("kid")
        key = keys.by_kid.get(kid)
        if key is None:
            if provider.jwks is None and now - keys.fetched_at > self.refresh_interval_s:
                raise NeedKeys(provider)  # maybe the issuer rotated its keys
            if keys.error is not None:
                raise TokenRefused(
                    f"The keys of the {provider.label} could not be fetched: {keys.error}"
                )
            raise TokenRefused(
                f"Unknown key: the token's kid {_show(kid)} is not in the JWKS of the "
                f"{provider.label}."
            )
        return Verified(self._decode(token, provider, key), _number(unverified.get("exp")))

    def _decode(self, token: str, provider: Provider, key: Any) -> UserIdentity:
        options: Any = {"require": ["iss", "sub", "exp"]}
        if provider.application_id is None:
            options["verify_aud"] = False
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[provider.algorithm],
                audience=provider.application_id,
                issuer=[provider.issuer, provider.issuer + "/"],
                leeway=LEEWAY_S,
                options=options,
            )
        except jwt.ExpiredSignatureError:
            raise TokenRefused("The token has expired (exp is in the past).") from None
        except jwt.ImmatureSignatureError:
            raise TokenRefused(
                "The token is not valid yet (nbf or iat is in the future)."
            ) from None
        except jwt.InvalidAudienceError:
            raise TokenRefused(
                f"Wrong audience: the token's aud does not include {provider.application_id!r}, "
                f"the application_id of the {provider.label}."
            ) from None
        except jwt.InvalidSignatureError:
            raise TokenRefused(
                f"Bad signature: no key of the {provider.label} verifies the token."
            ) from None
        except jwt.MissingRequiredClaimError as e:
            raise TokenRefused(f"The token lacks the {e.claim!r} claim.") from None
        except jwt.PyJWTError as e:
            raise TokenRefused(f"The token was refused: {e}.") from None
        return identity_from_claims(claims)

    # -- keys ----------------------------------------------------------------------------
    async def fetch_keys(self, provider: Provider) -> None:
        """Fetch ``provider``'s JWKS (through OIDC discovery for an OIDC provider). A failure
        is remembered and reported by :meth:`verify`, never raised. Callers arriving while a
        fetch of the same provider is under way wait for that one (one request, not one each)."""
        task = self._fetching.get(id(provider))
        if task is None:
            task = asyncio.ensure_future(self._fetch(provider))
            self._fetching[id(provider)] = task
            task.add_done_callback(lambda _: self._fetching.pop(id(provider), None))
        await asyncio.shield(task)  # a caller going away does not stop the others' fetch

    async def _fetch(self, provider: Provider) -> None:
        import httpx

        started = time.monotonic()
        try:
            async with httpx.AsyncClient(timeout=FETCH_TIMEOUT_S) as client:
                url = provider.jwks_url
                if url is None:
                    config = await _get_json(
                        client, provider.issuer + "/.well-known/openid-configuration"
                    )
                    url = config.get("jwks_uri") if isinstance(config, Mapping) else None
                    if not isinstance(url, str):
                        raise ValueError("its OpenID configuration has no jwks_uri")
                doc = await _get_json(client, url)
            self._keys[id(provider)] = _keys_of(doc, provider, started)
        except (httpx.HTTPError, ValueError, TypeError) as e:
            old = self._keys.get(id(provider))
            error = f"{type(e).__name__}: {e}"
            if old is not None and old.by_kid:
                old.fetched_at = started  # keep the keys we had; try again later
                old.error = error
            else:
                self._keys[id(provider)] = _Keys({}, started, error)


def identity_from_claims(claims: Mapping[str, Any]) -> UserIdentity:
    """The identity a verified token's claims give: Convex's tokenIdentifier ("iss|sub"),
    subject, issuer, the OpenID Connect claims under Convex's names, and every other claim."""
    out: dict[str, Any] = {
        "tokenIdentifier": f"{claims['iss']}|{claims['sub']}",
        "subject": str(claims["sub"]),
        "issuer": str(claims["iss"]),
    }
    for name, value in claims.items():
        if name in _OIDC_CLAIMS:
            out[_OIDC_CLAIMS[name]] = value
        elif name not in _REGISTERED:
            out[name] = value
    return UserIdentity(out)


async def _get_json(client: Any, url: str) -> Any:
    response = await client.get(url)
    if response.status_code != 200:
        raise ValueError(f"GET {url} answered HTTP {response.status_code}")
    return response.json()


def _keys_of(doc: Any, provider: Provider, fetched_at: float) -> _Keys:
    if not isinstance(doc, Mapping) or not isinstance(doc.get("keys"), list):
        raise ValueError("the JWKS has no keys list")
    by_kid: dict[str | None, Any] = {}
    kty = "RSA" if provider.algorithm.startswith("RS") else "EC"
    for jwk in doc["keys"]:
        if not isinstance(jwk, Mapping) or jwk.get("kty") != kty:
            continue  # another kind of key than the provider's algorithm needs
        if jwk.get("use") not in (None, "sig") or jwk.get("alg") not in (None, provider.algorithm):
            continue
        try:
            key = jwt.PyJWK.from_json(json.dumps(dict(jwk)), algorithm=provider.algorithm).key
        except jwt.PyJWTError:
            continue
        by_kid[jwk.get("kid")] = key
    if len(by_kid) == 1:
        by_kid.setdefault(None, next(iter(by_kid.values())))  # a token without kid
    return _Keys(by_kid, fetched_at)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


async def verify_fetching(verifier: TokenVerifier, token: str) -> Verified:
    """:meth:`TokenVerifier.verify`, fetching the provider's keys first when it needs them
    (raises :class:`TokenRefused`)."""
    try:
        return verifier.verify(token)
    except NeedKeys as need:
        await verifier.fetch_keys(need.provider)
    try:
        return verifier.verify(token)
    except NeedKeys as need:
        raise TokenRefused(f"The keys of the {need.provider.label} could not be fetched.") from None

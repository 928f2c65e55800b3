"""A sign-in provider of pyconvex's own, for development: it signs user tokens with a key it
keeps, and publishes what a deployment needs to check them (a JWKS, an OpenID configuration,
a ``custom_jwt`` provider entry). A dev sign-in page is built on it::

    issuer = DevIssuer.load_or_create(dev_signing_key_path(data_dir), "http://127.0.0.1:3211")
    token = issuer.sign("user_1", name="Ada", email="ada@example.com", picture_url="https://...")

Its tokens are ordinary JWTs (RS256 by default, as OpenID Connect's and Convex Auth's; or
ES256), checked like any provider's by
:mod:`pyconvex.runtime.auth.tokens`. A deployment trusts them in either of two ways:

* serve :meth:`DevIssuer.openid_configuration` at ``<issuer>/.well-known/openid-configuration``
  and :meth:`DevIssuer.jwks` at ``<issuer>/.well-known/jwks.json``; then ``auth_config.py``
  names it as any OpenID Connect provider: ``{"domain": <issuer>, "application_id": "convex"}``;
* or put :meth:`DevIssuer.config_entry` (a ``custom_jwt`` entry carrying its JWKS as a
  ``data:`` URI) in ``providers`` — no HTTP needed; :meth:`DevIssuer.provider` is the same
  entry already parsed.

The key (a PKCS#8 PEM, mode 0600) stays the same across restarts, so tokens signed before a
restart are still accepted; its ``kid`` is the key's RFC 7638 thumbprint.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from pyconvex.errors import PyconvexError
from pyconvex.project import ensure_private_dir
from pyconvex.runtime.auth.identity import UserIdentity
from pyconvex.runtime.auth.providers import ALGORITHMS, AuthConfigError, Provider, parse_providers
from pyconvex.runtime.auth.tokens import TokenVerifier

#: The audience of the tokens unless told otherwise (Convex Auth's application id).
DEFAULT_APPLICATION_ID = "convex"
#: How long a token is valid unless told otherwise (seconds).
DEFAULT_LIFETIME_S = 3600.0
#: The longest lifetime :meth:`DevIssuer.sign` gives a token (a day).
MAX_LIFETIME_S = 24 * 3600.0

# Claims the issuer sets itself: a caller's claim of these names would forge the token's frame.
_RESERVED = {"iss", "sub", "aud", "exp", "nbf", "iat", "jti"}
# UserIdentity's snake_case attributes -> the OpenID Connect claim carrying each.
_OIDC_NAMES = {
    "picture_url": "picture",
    "profile_url": "profile",
    "birthday": "birthdate",
    "timezone": "zoneinfo",
    "language": "locale",
}
_IDENTITY_ONLY = {"token_identifier", "tokenIdentifier", "subject", "issuer", "claims"}

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


class DevIssuerError(PyconvexError, ValueError):
    """The dev issuer cannot do what was asked (the message says what to change)."""


class DevIssuer:
    """Signs tokens for ``issuer`` (an http(s) URL) with ``key``; see the module docstring."""

    def __init__(
        self,
        key: PrivateKey,
        issuer: str,
        application_id: str = DEFAULT_APPLICATION_ID,
    ) -> None:
        if isinstance(key, ec.EllipticCurvePrivateKey):
            if not isinstance(key.curve, ec.SECP256R1):
                raise DevIssuerError("An EC signing key must be on P-256 (ES256).")
            self.algorithm = "ES256"
        elif isinstance(key, rsa.RSAPrivateKey):
            if key.key_size < 2048:
                raise DevIssuerError("An RSA signing key must have at least 2048 bits.")
            self.algorithm = "RS256"
        else:
            raise DevIssuerError(
                f"A signing key must be EC P-256 or RSA, got {type(key).__name__}."
            )
        self._key = key
        self.application_id = application_id
        public = _public_jwk(key)
        self.kid = _thumbprint(public)
        self._jwk = {**public, "kid": self.kid, "use": "sig", "alg": self.algorithm}
        # Checked as auth_config.py's entries are (an http(s) issuer, a non-empty audience).
        try:
            self._provider = parse_providers([self.config_entry(issuer)], "dev issuer")[0]
        except AuthConfigError as e:
            raise DevIssuerError(str(e).replace("dev issuer: providers[0]: ", "")) from None
        self.issuer = self._provider.issuer

    # -- making one --------------------------------------------------------------------------
    @classmethod
    def generate(
        cls,
        issuer: str,
        application_id: str = DEFAULT_APPLICATION_ID,
        algorithm: str = "RS256",
    ) -> DevIssuer:
        """An issuer with a fresh key held in memory only."""
        return cls(_new_key(algorithm), issuer, application_id)

    @classmethod
    def load_or_create(
        cls,
        path: Path,
        issuer: str,
        application_id: str = DEFAULT_APPLICATION_ID,
        algorithm: str = "RS256",
    ) -> DevIssuer:
        """The issuer whose key is kept at ``path`` (a PEM, 0600), creating the key first
        when there is none (``algorithm`` applies only then)."""
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            data = None
        if data is None:
            key = _new_key(algorithm)
            ensure_private_dir(path.parent)
            pem = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:  # another process made it meanwhile: use theirs
                return cls.load_or_create(path, issuer, application_id, algorithm)
            with os.fdopen(fd, "wb") as f:
                f.write(pem)
            return cls(key, issuer, application_id)
        try:
            loaded = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as e:
            raise DevIssuerError(
                f"{path} is not an unencrypted PEM private key ({e}); delete it and a new key "
                "is made (tokens signed with the old one are then refused)."
            ) from None
        if not isinstance(loaded, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise DevIssuerError(f"{path} holds a {type(loaded).__name__}, not an EC or RSA key.")
        return cls(loaded, issuer, application_id)

    # -- signing -----------------------------------------------------------------------------
    def sign(
        self,
        subject: str,
        *,
        lifetime_s: float = DEFAULT_LIFETIME_S,
        now: float | None = None,
        **claims: Any,
    ) -> str:
        """A token for ``subject``, valid ``lifetime_s`` seconds from ``now``.

        ``claims`` may use UserIdentity's attribute names (``name``, ``email``,
        ``picture_url``, ``email_verified``, ...) or OpenID Connect's (``picture``, ...); any
        other JSON value is a custom claim, found in ``identity.claims``."""
        if not isinstance(subject, str) or not subject:
            raise DevIssuerError(f"The subject must be a non-empty string, got {subject!r}.")
        if not 0 < lifetime_s <= MAX_LIFETIME_S:
            raise DevIssuerError(
                f"lifetime_s must be more than 0 and at most {MAX_LIFETIME_S:.0f} seconds, got "
                f"{lifetime_s!r}."
            )
        issued = int(time.time() if now is None else now)
        payload: dict[str, Any] = {}
        for name, value in claims.items():
            claim = _OIDC_NAMES.get(name, name)
            if claim in _RESERVED or name in _IDENTITY_ONLY:
                raise DevIssuerError(
                    f"{name!r} is set by the issuer itself (subject, issuer, audience, times); "
                    "pass the subject as the first argument."
                )
            payload[claim] = value
        payload.update(
            iss=self.issuer,
            sub=subject,
            aud=self.application_id,
            iat=issued,
            nbf=issued,
            exp=issued + int(lifetime_s),
        )
        try:
            return jwt.encode(
                payload, self._key, algorithm=self.algorithm, headers={"kid": self.kid}
            )
        except TypeError as e:
            raise DevIssuerError(f"The claims must be JSON values: {e}") from None

    def identity(self, token: str) -> UserIdentity:
        """The identity a token of this issuer gives (checked as a deployment checks it)."""
        return TokenVerifier([self._provider]).verify(token).identity

    # -- what a deployment needs to trust it -------------------------------------------------
    def jwks(self) -> dict[str, Any]:
        """The public key as a JWKS: ``{"keys": [...]}``."""
        return {"keys": [dict(self._jwk)]}

    def openid_configuration(self, jwks_uri: str | None = None) -> dict[str, Any]:
        """The document to serve at ``<issuer>/.well-known/openid-configuration`` (the JWKS
        at ``jwks_uri``, by default ``<issuer>/.well-known/jwks.json``)."""
        return {
            "issuer": self.issuer,
            "jwks_uri": jwks_uri or f"{self.issuer}/.well-known/jwks.json",
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [self.algorithm],
        }

    def config_entry(self, issuer: str | None = None) -> dict[str, Any]:
        """A ``custom_jwt`` entry of ``auth_config.py``'s ``providers`` trusting this issuer
        (its JWKS inline, as a ``data:`` URI)."""
        doc = json.dumps(self.jwks(), separators=(",", ":")).encode()
        return {
            "type": "custom_jwt",
            "issuer": issuer if issuer is not None else self.issuer,
            "application_id": self.application_id,
            "algorithm": self.algorithm,
            "jwks": "data:application/json;base64," + base64.b64encode(doc).decode(),
        }

    def provider(self) -> Provider:
        """:meth:`config_entry`, parsed: a provider a ``TokenVerifier`` takes."""
        return self._provider

    def __repr__(self) -> str:
        return f"DevIssuer(issuer={self.issuer!r}, algorithm={self.algorithm!r}, kid={self.kid!r})"


def _new_key(algorithm: str) -> PrivateKey:
    if algorithm == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raise DevIssuerError(f"algorithm must be one of {', '.join(ALGORITHMS)}, got {algorithm!r}.")


def _public_jwk(key: PrivateKey) -> dict[str, Any]:
    codec: Any = ECAlgorithm if isinstance(key, ec.EllipticCurvePrivateKey) else RSAAlgorithm
    jwk: dict[str, Any] = json.loads(codec.to_jwk(key.public_key()))
    return jwk


def _thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638: sha256 of the key's required members, sorted, without whitespace."""
    members = ("crv", "kty", "x", "y") if jwk["kty"] == "EC" else ("e", "kty", "n")
    canonical = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"), sort_keys=True)
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

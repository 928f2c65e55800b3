"""Sign-in providers: ``providers = [...]`` in ``convex/auth_config.py``, as Convex's
``auth.config.ts`` lists them, in snake_case::

    # convex/auth_config.py
    providers = [
        # OpenID Connect (Clerk, Auth0, ...): keys found through the issuer's discovery document
        {"domain": "https://my-app.clerk.accounts.dev", "application_id": "convex"},
        # Any issuer of JWTs with a JWKS (Convex's customJwt)
        {
            "type": "custom_jwt",
            "issuer": "https://auth.example.com",
            "application_id": "my-app",        # optional: then the token's aud is not checked
            "algorithm": "RS256",               # or "ES256"
            "jwks": "https://auth.example.com/.well-known/jwks.json",  # or a data: URI, or a dict
        },
    ]

:func:`parse_providers` checks the list when the functions are pushed; an entry that is wrong
is an :class:`AuthConfigError` naming it, so the push fails and the running code stays.
"""

from __future__ import annotations

import base64
import binascii
import json
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pyconvex.errors import PyconvexError

#: Signature algorithms a provider may pin (asymmetric only: HMAC secrets would have to be
#: shared with the deployment, and "none" is never accepted).
ALGORITHMS = ("RS256", "ES256")
_OIDC_KEYS = {"domain", "application_id", "algorithm"}
_CUSTOM_KEYS = {"type", "issuer", "application_id", "algorithm", "jwks"}


class AuthConfigError(PyconvexError, ValueError):
    """``auth_config.py``'s providers are not usable; the message names the entry."""


@dataclass(frozen=True, slots=True)
class Provider:
    """One provider: tokens whose ``iss`` is ``issuer`` (and ``aud`` is ``application_id``,
    when set) signed with ``algorithm`` by a key of its JWKS.

    ``jwks`` is the JWKS itself (``data:`` URI or dict in the config) or None, in which case
    ``jwks_url`` (custom JWT) or OIDC discovery at ``issuer`` (``kind == "oidc"``) finds it."""

    kind: Literal["oidc", "custom_jwt"]
    issuer: str
    application_id: str | None
    algorithm: str
    jwks_url: str | None = None
    jwks: Mapping[str, Any] | None = None

    @property
    def label(self) -> str:
        aud = f", application_id {self.application_id}" if self.application_id else ""
        return f"{self.kind} provider {self.issuer}{aud}"


def parse_providers(raw: Any, where: str = "convex/auth_config.py") -> list[Provider]:
    """The providers of ``auth_config.py``'s ``providers`` (raises :class:`AuthConfigError`)."""
    if raw is None:
        return []
    if not isinstance(raw, Sequence) or isinstance(raw, str | bytes):
        raise AuthConfigError(
            f"{where}: `providers` must be a list of provider dicts, got {type(raw).__name__}."
        )
    providers = []
    for i, entry in enumerate(raw):
        at = f"{where}: providers[{i}]"
        if not isinstance(entry, Mapping):
            raise AuthConfigError(f"{at} must be a dict, got {type(entry).__name__}.")
        providers.append(_provider(entry, at))
    return providers


def _provider(entry: Mapping[str, Any], at: str) -> Provider:
    kind = entry.get("type", "oidc")
    if kind == "custom_jwt" or kind == "customJwt":
        _only(entry, _CUSTOM_KEYS | {"applicationID"}, at)
        issuer = _url(entry.get("issuer"), "issuer", at)
        algorithm = entry.get("algorithm")
        if algorithm not in ALGORITHMS:
            raise AuthConfigError(
                f"{at}: algorithm must be one of {', '.join(ALGORITHMS)} (the algorithm the "
                f"issuer signs with), got {algorithm!r}."
            )
        jwks = entry.get("jwks")
        jwks_url, jwks_doc = _jwks(jwks, at)
        return Provider(
            "custom_jwt", issuer, _application_id(entry, at, False), algorithm, jwks_url, jwks_doc
        )
    if kind != "oidc":
        raise AuthConfigError(
            f"{at}: type must be 'custom_jwt', or left out for an OpenID Connect provider "
            f"(domain + application_id), got {kind!r}."
        )
    _only(entry, _OIDC_KEYS | {"applicationID"}, at)
    issuer = _url(entry.get("domain"), "domain", at)
    algorithm = entry.get("algorithm", "RS256")
    if algorithm not in ALGORITHMS:
        raise AuthConfigError(f"{at}: algorithm must be one of {', '.join(ALGORITHMS)}.")
    return Provider("oidc", issuer, _application_id(entry, at, True), algorithm)


def _only(entry: Mapping[str, Any], allowed: set[str], at: str) -> None:
    extra = sorted(str(k) for k in entry if k not in allowed)
    if extra:
        raise AuthConfigError(
            f"{at} has unknown keys {', '.join(extra)} (allowed: {', '.join(sorted(allowed))})."
        )


def _url(value: Any, name: str, at: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise AuthConfigError(f"{at}: {name} must be the issuer's URL, got {value!r}.")
    parsed = urllib.parse.urlsplit(value.strip())
    if parsed.scheme not in ("https", "http") or not parsed.netloc:
        raise AuthConfigError(
            f"{at}: {name} must be an http(s) URL such as https://auth.example.com, got {value!r}."
        )
    return value.strip().rstrip("/")


def _application_id(entry: Mapping[str, Any], at: str, required: bool) -> str | None:
    value = entry.get("application_id", entry.get("applicationID"))
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise AuthConfigError(
            f"{at}: application_id must be the audience (aud) your tokens carry, got {value!r}."
        )
    return value


def _jwks(value: Any, at: str) -> tuple[str | None, Mapping[str, Any] | None]:
    if isinstance(value, Mapping):
        return None, _checked_jwks(value, at)
    if isinstance(value, str) and value.startswith("data:"):
        header, _, payload = value.partition(",")
        try:
            text = (
                base64.b64decode(payload).decode()
                if header.endswith(";base64")
                else urllib.parse.unquote(payload)
            )
            doc = json.loads(text)
        except (ValueError, binascii.Error) as e:
            raise AuthConfigError(f"{at}: jwks is a data: URI that is not JSON: {e}") from None
        return None, _checked_jwks(doc, at)
    if isinstance(value, str):
        return _url(value, "jwks", at), None
    raise AuthConfigError(
        f"{at}: jwks must be the JWKS's URL, a data: URI of it, or the JWKS as a dict, got "
        f"{type(value).__name__}."
    )


def _checked_jwks(doc: Any, at: str) -> Mapping[str, Any]:
    if not isinstance(doc, Mapping) or not isinstance(doc.get("keys"), list) or not doc["keys"]:
        raise AuthConfigError(f'{at}: jwks must be a JWKS: {{"keys": [ ...public keys... ]}}.')
    return doc

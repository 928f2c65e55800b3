"""Tokens against providers, with keys made here and a JWKS served on 127.0.0.1: a valid token
gives its identity; every kind of bad token is refused saying why; keys are found by OIDC
discovery, rotated keys picked up, fetches bounded."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator

import jwt
import pytest
from support.jwt_issuer import Issuer, new_key

from pyconvex.runtime.auth.providers import AuthConfigError, parse_providers
from pyconvex.runtime.auth.tokens import TokenRefused, TokenVerifier, verify_fetching


@pytest.fixture(params=["RS256", "ES256"])
def issuer(request: pytest.FixtureRequest) -> Iterator[Issuer]:
    with Issuer(request.param) as issuer:
        yield issuer


def verifier_for(*entries: dict[str, object]) -> TokenVerifier:
    return TokenVerifier(parse_providers(list(entries)))


async def test_a_valid_token_gives_its_identity(issuer: Issuer) -> None:
    verifier = verifier_for(issuer.custom_provider())
    token = issuer.token(
        sub="user1", name="Ada", email="ada@example.com", picture="https://p/a.png", org="acme"
    )
    verified = await verify_fetching(verifier, token)
    identity = verified.identity
    assert identity.token_identifier == f"{issuer.url}|user1"
    assert (identity.subject, identity.issuer) == ("user1", issuer.url)
    assert (identity.name, identity.email, identity.picture_url) == (
        "Ada", "ada@example.com", "https://p/a.png",
    )  # fmt: skip
    assert identity.claims["org"] == "acme" and identity["org"] == "acme"
    assert verified.expires_at is not None and verified.expires_at > time.time()


async def test_oidc_discovery_finds_the_keys(issuer: Issuer) -> None:
    verifier = verifier_for(issuer.oidc_provider("my-app"))
    identity = (await verify_fetching(verifier, issuer.token())).identity
    assert identity.subject == "user1"


def _refusal(verifier: TokenVerifier, token: str) -> str:
    import asyncio

    with pytest.raises(TokenRefused) as refused:
        asyncio.run(verify_fetching(verifier, token))
    return refused.value.reason


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda i: i.token(lifetime=-3600), "expired"),
        (lambda i: i.token(nbf=int(time.time()) + 3600), "not valid yet"),
        (lambda i: i.token(iss="https://other.example.com"), "Wrong issuer"),
        (lambda i: i.token(aud="another-app"), "Wrong audience"),
        (lambda i: i.token(key=new_key(i.algorithm)), "Bad signature"),
        (lambda i: i.token(headers={"kid": "nope"}), "Unknown key"),
        (lambda i: i.token(sub=None), "lacks the 'sub' claim"),
        (lambda i: "not.a.jwt", "not a well-formed JWT"),
        (lambda i: "", "not a JWT"),
    ],
    ids=[
        "expired",
        "not-yet-valid",
        "issuer",
        "audience",
        "signature",
        "kid",
        "sub",
        "junk",
        "empty",
    ],
)
def test_bad_tokens_are_refused_with_the_reason(issuer: Issuer, make: object, reason: str) -> None:
    verifier = verifier_for(issuer.custom_provider())
    assert reason in _refusal(verifier, make(issuer))  # type: ignore[operator]


def test_alg_none_and_hmac_with_the_public_key_are_refused(issuer: Issuer) -> None:
    verifier = verifier_for(issuer.custom_provider())
    payload = {"iss": issuer.url, "sub": "u", "aud": "my-app", "exp": int(time.time()) + 60}
    unsigned = jwt.encode(payload, None, algorithm="none")
    assert "accepts only" in _refusal(verifier, unsigned)
    # The classic confusion attack: HS256 keyed with the provider's public key.
    public = json.dumps(issuer.jwks()["keys"][0]).encode()
    forged_header = base64.urlsafe_b64encode(
        json.dumps({"alg": "HS256", "typ": "JWT", "kid": issuer.kid}).encode()
    ).rstrip(b"=")
    body = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=")
    import hashlib
    import hmac

    sig = base64.urlsafe_b64encode(
        hmac.new(public, forged_header + b"." + body, hashlib.sha256).digest()
    ).rstrip(b"=")
    assert "accepts only" in _refusal(verifier, (forged_header + b"." + body + b"." + sig).decode())


async def test_a_rotated_key_is_picked_up_and_fetches_are_bounded(issuer: Issuer) -> None:
    verifier = verifier_for(issuer.custom_provider())
    await verify_fetching(verifier, issuer.token())
    assert issuer.requests == 1
    issuer.rotate()
    verifier.refresh_interval_s = 0.0  # (10 s by default)
    assert (await verify_fetching(verifier, issuer.token())).identity.subject == "user1"
    assert issuer.requests == 2
    verifier.refresh_interval_s = 3600.0
    for _ in range(5):  # unknown kids do not make a fetch each
        with pytest.raises(TokenRefused, match="Unknown key"):
            await verify_fetching(verifier, issuer.token(headers={"kid": "forged"}))
    assert issuer.requests == 2


async def test_tokens_arriving_together_share_one_fetch(issuer: Issuer) -> None:
    import asyncio

    verifier = verifier_for(issuer.oidc_provider("my-app"))
    tokens = [issuer.token(sub=f"user{i}") for i in range(20)]
    verified = await asyncio.gather(*(verify_fetching(verifier, t) for t in tokens))
    assert [v.identity.subject for v in verified] == [f"user{i}" for i in range(20)]
    assert issuer.requests == 1
    issuer.rotate()
    verifier.refresh_interval_s = 0.0
    forged = [issuer.token(headers={"kid": f"forged-{i}"}) for i in range(10)]
    refused = await asyncio.gather(
        *(verify_fetching(verifier, t) for t in forged), return_exceptions=True
    )
    assert all(isinstance(r, TokenRefused) for r in refused)
    assert issuer.requests == 2  # the burst of unknown kids made one refresh


async def test_inline_jwks_as_dict_and_data_uri(issuer: Issuer) -> None:
    doc = issuer.jwks()
    uri = "data:application/json;base64," + base64.b64encode(json.dumps(doc).encode()).decode()
    for jwks in (doc, uri):
        verifier = verifier_for(issuer.custom_provider(jwks=jwks))
        assert verifier.verify(issuer.token()).identity.subject == "user1"  # no fetch needed
    assert issuer.requests == 0


async def test_an_unreachable_jwks_is_a_clear_refusal() -> None:
    verifier = verifier_for(
        {"type": "custom_jwt", "issuer": "http://127.0.0.1:9", "algorithm": "RS256",
         "jwks": "http://127.0.0.1:9/jwks.json"}
    )  # fmt: skip
    with Issuer() as issuer:
        token = issuer.token(iss="http://127.0.0.1:9")
    with pytest.raises(TokenRefused, match="could not be fetched"):
        await verify_fetching(verifier, token)


@pytest.mark.parametrize(
    ("providers", "message"),
    [
        ({"domain": "x"}, "providers` must be a list"),
        (["x"], "providers[0] must be a dict"),
        ([{"domain": "not a url", "application_id": "a"}], "providers[0]: domain must be"),
        ([{"domain": "https://a.b"}], "providers[0]: application_id must be"),
        (
            [{"type": "custom_jwt", "issuer": "https://a.b", "algorithm": "HS256", "jwks": {}}],
            "algorithm must be one of RS256, ES256",
        ),
        (
            [{"type": "custom_jwt", "issuer": "https://a.b", "algorithm": "RS256", "jwks": 3}],
            "jwks must be",
        ),
        ([{"type": "oauth", "domain": "https://a.b"}], "type must be 'custom_jwt'"),
        ([{"domain": "https://a.b", "application_id": "a", "aplication": 1}], "unknown keys"),
    ],
)
def test_bad_config_names_the_entry(providers: object, message: str) -> None:
    with pytest.raises(AuthConfigError) as error:
        parse_providers(providers)
    assert message in str(error.value) and "convex/auth_config.py" in str(error.value)

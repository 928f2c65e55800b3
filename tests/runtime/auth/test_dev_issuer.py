"""The dev sign-in provider: its tokens are accepted by the same checks as any provider's
(inline JWKS entry, or OpenID discovery served on 127.0.0.1), its key survives a restart, and
what it will not sign is refused saying why."""

from __future__ import annotations

import json
import stat
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from support.deployment import DeploymentFactory
from support.live_sync import http_call, live_server

from pyconvex.project import dev_signing_key_path
from pyconvex.runtime.auth.dev_issuer import DevIssuer, DevIssuerError
from pyconvex.runtime.auth.providers import parse_providers
from pyconvex.runtime.auth.tokens import TokenRefused, TokenVerifier, verify_fetching

ISSUER = "http://127.0.0.1:3211"


@pytest.mark.parametrize("algorithm", ["ES256", "RS256"])
def test_its_tokens_give_the_identity_through_its_config_entry(algorithm: str) -> None:
    dev = DevIssuer.generate(ISSUER, algorithm=algorithm)
    verifier = TokenVerifier(parse_providers([dev.config_entry()]))
    token = dev.sign(
        "user_1", name="Ada", email="ada@example.com", picture_url="https://p/a.png",
        email_verified=True, org="acme",
    )  # fmt: skip
    identity = verifier.verify(token).identity
    assert identity.token_identifier == f"{ISSUER}|user_1"
    assert (identity.subject, identity.issuer, identity.name) == ("user_1", ISSUER, "Ada")
    assert (identity.email, identity.picture_url, identity.email_verified) == (
        "ada@example.com", "https://p/a.png", True,
    )  # fmt: skip
    assert identity.claims["org"] == "acme"
    assert dev.identity(token) == identity
    assert jwt_header(token) == {"alg": algorithm, "kid": dev.kid, "typ": "JWT"}


def jwt_header(token: str) -> dict[str, Any]:
    import jwt

    return jwt.get_unverified_header(token)


@pytest.fixture
def discovery() -> Iterator[tuple[str, dict[str, Any]]]:
    """An HTTP server on 127.0.0.1 serving whatever ``docs`` holds by path."""
    docs: dict[str, Any] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path not in docs:
                self.send_error(404)
                return
            body = json.dumps(docs[self.path]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", docs
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.mark.parametrize("algorithm", ["RS256", "ES256"])
async def test_its_openid_configuration_serves_oidc_discovery(
    discovery: tuple[str, dict[str, Any]], algorithm: str
) -> None:
    url, docs = discovery
    dev = DevIssuer.generate(url, algorithm=algorithm)
    docs["/.well-known/openid-configuration"] = dev.openid_configuration()
    docs["/.well-known/jwks.json"] = dev.jwks()
    entry = {"domain": url, "application_id": "convex"}
    if algorithm != "RS256":  # OpenID Connect's default
        entry["algorithm"] = algorithm
    verifier = TokenVerifier(parse_providers([entry]))
    identity = (await verify_fetching(verifier, dev.sign("u2", name="Bo"))).identity
    assert (identity.subject, identity.name) == ("u2", "Bo")


def test_the_key_is_kept_and_survives_a_restart(tmp_path: Path) -> None:
    path = dev_signing_key_path(tmp_path / ".pyconvex")
    first = DevIssuer.load_or_create(path, ISSUER)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    token = first.sign("user_1")
    again = DevIssuer.load_or_create(path, ISSUER, algorithm="ES256")  # the kept key wins
    assert (again.kid, again.algorithm) == (first.kid, "RS256")
    assert again.identity(token).subject == "user_1"
    other = DevIssuer.generate(ISSUER)
    assert other.kid != first.kid
    with pytest.raises(TokenRefused, match="Unknown key"):
        again.identity(other.sign("user_1"))
    path.write_text("not a key")
    with pytest.raises(DevIssuerError, match="not an unencrypted PEM private key"):
        DevIssuer.load_or_create(path, ISSUER)


def test_tokens_expire_and_bind_their_issuer_and_audience() -> None:
    dev = DevIssuer.generate(ISSUER, application_id="my-app")
    verifier = TokenVerifier(parse_providers([dev.config_entry()]))
    old = dev.sign("u", lifetime_s=60, now=time.time() - 3600)
    with pytest.raises(TokenRefused, match="expired"):
        verifier.verify(old)
    elsewhere = TokenVerifier(parse_providers([{**dev.config_entry(), "application_id": "x"}]))
    with pytest.raises(TokenRefused, match="Wrong audience"):
        elsewhere.verify(dev.sign("u"))
    impostor = DevIssuer.generate(ISSUER, application_id="my-app")
    with pytest.raises(TokenRefused, match="Unknown key"):
        verifier.verify(impostor.sign("u"))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda d: d.sign(""), "subject must be a non-empty string"),
        (lambda d: d.sign("u", lifetime_s=0), "lifetime_s must be more than 0"),
        (lambda d: d.sign("u", lifetime_s=10 * 86400), "at most 86400 seconds"),
        (lambda d: d.sign("u", iss="https://evil"), "set by the issuer itself"),
        (lambda d: d.sign("u", token_identifier="x|y"), "set by the issuer itself"),
        (lambda d: d.sign("u", exp=0), "set by the issuer itself"),
        (lambda d: d.sign("u", blob=object()), "must be JSON values"),
    ],
)
def test_what_it_will_not_sign_is_refused_saying_why(call: Any, message: str) -> None:
    with pytest.raises(DevIssuerError, match=message):
        call(DevIssuer.generate(ISSUER))


def test_a_bad_issuer_or_algorithm_is_refused() -> None:
    with pytest.raises(DevIssuerError, match="issuer must be an http"):
        DevIssuer.generate("not a url")
    with pytest.raises(DevIssuerError, match="algorithm must be one of RS256, ES256"):
        DevIssuer.generate(ISSUER, algorithm="HS256")


WHOAMI = """
from pyconvex import query


@query
async def whoami(ctx):
    identity = await ctx.auth.get_user_identity()
    return None if identity is None else [identity.token_identifier, identity.name]
"""


async def test_a_deployment_trusting_it_runs_functions_as_its_users(
    deployment: DeploymentFactory,
) -> None:
    dev = DevIssuer.generate("https://dev.pyconvex.test")
    auth_config = f"providers = [{dev.config_entry()!r}]\n"
    dep = await deployment({"who.py": WHOAMI, "auth_config.py": auth_config})
    async with live_server(dep) as server:
        bearer = {"Authorization": f"Bearer {dev.sign('ada', name='Ada')}"}
        r = await http_call(server.url, "query", "who:whoami", {}, headers=bearer)
        assert r.json()["value"] == ["https://dev.pyconvex.test|ada", "Ada"]
        forged = {"Authorization": f"Bearer {DevIssuer.generate(dev.issuer).sign('ada')}"}
        r = await http_call(server.url, "query", "who:whoami", {}, headers=forged)
        assert r.status_code == 401 and "Unknown key" in r.json()["message"]

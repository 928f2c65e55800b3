"""A token issuer for tests: keys made here (RSA or EC), its JWKS and OpenID configuration served
on 127.0.0.1, and tokens signed on demand::

    with Issuer("RS256") as issuer:
        token = issuer.token(sub="user1", name="Ada")
        providers = [issuer.oidc_provider("my-app")]     # or issuer.custom_provider(...)
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm


def new_key(algorithm: str) -> Any:
    if algorithm == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def public_jwk(key: Any, kid: str, algorithm: str) -> dict[str, Any]:
    codec = RSAAlgorithm if algorithm == "RS256" else ECAlgorithm
    jwk: dict[str, Any] = json.loads(codec.to_jwk(key.public_key()))
    jwk.update({"kid": kid, "use": "sig", "alg": algorithm})
    return jwk


class Issuer:
    """See the module docstring. ``rotate()`` replaces the signing key (a new kid in the
    JWKS, the old one gone); ``requests`` counts the JWKS fetches."""

    def __init__(self, algorithm: str = "RS256") -> None:
        self.algorithm = algorithm
        self.key = new_key(algorithm)
        self.kid = "key-1"
        self.requests = 0
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/.well-known/openid-configuration":
                    body = {"issuer": issuer.url, "jwks_uri": issuer.url + "/jwks.json"}
                elif self.path == "/jwks.json":
                    issuer.requests += 1
                    body = issuer.jwks()
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Issuer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)

    def jwks(self) -> dict[str, Any]:
        return {"keys": [public_jwk(self.key, self.kid, self.algorithm)]}

    def rotate(self) -> None:
        self.key = new_key(self.algorithm)
        self.kid = f"key-{int(self.kid.split('-')[1]) + 1}"

    def token(
        self,
        *,
        aud: str | list[str] = "my-app",
        lifetime: float = 3600,
        headers: dict[str, Any] | None = None,
        key: Any = None,
        algorithm: str | None = None,
        **claims: Any,
    ) -> str:
        now = int(time.time())
        payload: dict[str, Any] = {
            "iss": self.url, "sub": "user1", "aud": aud, "iat": now, "exp": now + lifetime,
        }  # fmt: skip
        payload.update(claims)
        payload = {k: v for k, v in payload.items() if v is not None}
        return jwt.encode(
            payload,
            self.key if key is None else key,
            algorithm=algorithm or self.algorithm,
            headers={"kid": self.kid, **(headers or {})},
        )

    def oidc_provider(self, application_id: str = "my-app") -> dict[str, Any]:
        entry = {"domain": self.url, "application_id": application_id}
        if self.algorithm != "RS256":  # OpenID Connect's usual algorithm is the default
            entry["algorithm"] = self.algorithm
        return entry

    def custom_provider(
        self, application_id: str | None = "my-app", **extra: Any
    ) -> dict[str, Any]:
        entry = {
            "type": "custom_jwt",
            "issuer": self.url,
            "algorithm": self.algorithm,
            "jwks": self.url + "/jwks.json",
            **extra,
        }
        if application_id is not None:
            entry["application_id"] = application_id
        return entry

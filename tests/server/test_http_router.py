"""HttpRouter: routes by exact path and by prefix per method, as Convex's router; bad routes
are refused saying what to change."""

from __future__ import annotations

from typing import Any

import pytest

from pyconvex import HttpRouter
from pyconvex.server.http_router import HttpRouteError, cors_headers


async def handler(ctx: Any, request: Any) -> Any:
    return None


async def other(ctx: Any, request: Any) -> Any:
    return None


def test_lookup_prefers_exact_then_the_longest_prefix() -> None:
    http = HttpRouter()
    http.route("/a/b", method="GET", handler=handler)
    http.route(path_prefix="/a/", method="GET", handler=other)
    http.route(path_prefix="/a/b/", method="GET", handler=handler)
    found = http.lookup("/a/b", "GET")
    assert found is not None and found.label == "GET /a/b"
    found = http.lookup("/a/c", "HEAD")
    assert found is not None and found.label == "GET /a/*" and found.handler is other
    found = http.lookup("/a/b/c", "GET")
    assert found is not None and found.label == "GET /a/b/*"
    assert http.lookup("/a/b", "POST") is None
    assert [r.label for r in http.routes] == ["GET /a/b", "GET /a/*", "GET /a/b/*"]
    assert http.methods_for("/a/b") == ["GET"]


def test_the_decorator_returns_the_handler() -> None:
    http = HttpRouter()

    @http.route("/hi", method="post")
    async def hi(ctx: Any, request: Any) -> Any:
        return None

    route = http.lookup("/hi", "POST")
    assert route is not None and route.handler is hi and route.method == "POST"


@pytest.mark.parametrize(
    ("register", "message"),
    [
        (lambda h: h.route("/x", method="FETCH", handler=handler), "'FETCH' is not a method"),
        (
            lambda h: h.route("x", method="GET", handler=handler),
            "must be a string starting with '/'",
        ),
        (lambda h: h.route(path_prefix="/x", method="GET", handler=handler), "must end with '/'"),
        (lambda h: h.route(method="GET", handler=handler), "needs path='/exact'"),
        (lambda h: h.route("/x", path_prefix="/y/", method="GET", handler=handler), "not both"),
        (lambda h: h.route("/x", method="GET", handler=lambda: None), "must take (ctx, request)"),
    ],
)
def test_bad_routes_are_refused(register: Any, message: str) -> None:
    with pytest.raises(HttpRouteError) as info:
        register(HttpRouter())
    assert message in str(info.value)


def test_a_route_is_defined_once() -> None:
    http = HttpRouter()
    http.route("/x", method="GET", handler=handler)
    with pytest.raises(HttpRouteError, match="routed twice"):
        http.route("/x", method="GET", handler=other)
    http.route("/x", method="POST", handler=other)  # another method is fine


def test_cors_headers() -> None:
    assert cors_headers("https://a.b") == {"Access-Control-Allow-Origin": "*"}
    allowed = cors_headers("https://a.b", ["https://a.b"])
    assert allowed == {"Access-Control-Allow-Origin": "https://a.b", "Vary": "Origin"}
    assert cors_headers("https://evil", ["https://a.b"]) == {}

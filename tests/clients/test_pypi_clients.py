"""PyPI `convex` 0.8.1 (ConvexClient over WebSocket, ConvexHttpClient) against pyconvex.

The WebSocket client's Rust core blocks while holding the GIL, so each client runs in a
subprocess (py/*.py) with its own time limit.
"""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.clients

BAD = {"code": "BAD", "n": 1}


def _echoes_match(r: Any) -> None:
    sent = r.step("sent")["value"]
    assert sent["int"] == {"$integer": "ewAAAAAAAAA="}
    assert sent["negZero"] == {"$float": "AAAAAAAAAIA="}
    echoes = r.all("step", "echo")
    assert [e["kind"] for e in echoes] == ["query", "mutation", "action"]
    for e in echoes:
        assert e["value"] == sent, f"{e['kind']} returned {e['value']}"


def test_pypi_websocket_client(pypi: Any, server: Any) -> None:
    r = pypi("ws_client.py", server)
    assert r.step("initial")["docs"] == []
    update = r.step("update")
    assert update["bodies"] == ["hello"] and isinstance(update["id"], str)
    for step in ("mutation_error", "query_error"):
        line = r.step(step)
        assert line["raised"] is True and line["data"] == BAD, line
    assert r.step("query")["count"] == 1
    assert r.step("action")["result"]["count"] == 2
    _echoes_match(r)
    assert r.step("int64_type") == {"step": "int64_type", "type": "ConvexInt64", "value": 5}


def test_pypi_http_client(pypi: Any, server: Any) -> None:
    r = pypi("http_client.py", server)
    assert isinstance(r.step("mutation")["id"], str)
    assert r.step("query")["bodies"] == ["over http"]
    assert r.step("action")["result"]["count"] == 2
    for step in ("mutation_error", "query_error"):
        line = r.step(step)
        assert line["raised"] is True and line["data"] == BAD, line
    _echoes_match(r)

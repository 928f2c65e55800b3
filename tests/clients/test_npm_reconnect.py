"""npm ConvexClient across pyconvex server restarts: subscriptions resume, writes exactly once."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.clients

BURST = 20


def test_reconnect_after_server_restart(npm_session: Any, fresh_server: Any) -> None:
    s = npm_session("reconnect.mjs", fresh_server, str(BURST))
    s.expect("ready")

    # Phase 1: a mutation issued while the server is down is applied once it is back.
    fresh_server.stop()
    s.send("down")
    queued = s.expect("queued")
    assert queued["state"]["isWebSocketConnected"] is False
    fresh_server.start(fresh_server.port, fresh_server.site_port)
    phase1 = s.expect("phase1", timeout=45)
    assert phase1["bodies"] == ["before", "while-down"], s.report()
    # Read-your-writes holds across the reconnect as well.
    assert phase1["bodiesAtResolve"] == ["before", "while-down"]
    assert phase1["connectionCount"] >= 2

    # Phase 2: a burst in flight while the server restarts; each mutation applied exactly once.
    s.send("burst")
    s.expect("burst_sent")
    fresh_server.restart()
    phase2 = s.expect("phase2", timeout=60)
    expected = {"before": 1, "while-down": 1, **{f"burst-{i}": 1 for i in range(BURST)}}
    assert phase2["counts"] == expected, s.report()
    assert phase2["distinctIds"] == BURST
    assert phase2["subscriptionLength"] == BURST + 2
    s.finish()

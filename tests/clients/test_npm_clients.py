"""npm `convex` 1.48.0 (ConvexClient, ConvexHttpClient, ConvexReactClient) against pyconvex."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.clients

BAD = {"code": "BAD", "n": 1}


def test_browser_client_subscribe_mutate_errors_action(npm: Any, server: Any) -> None:
    r = npm("browser_client.mjs", server)
    assert r.step("initial")["docs"] == []
    resolved = r.step("mutation_resolved")
    assert isinstance(resolved["id"], str) and resolved["id"]
    # Read-your-writes: the subscription already shows the write when the mutation resolves.
    assert [d["body"] for d in resolved["current"]] == ["hello"]
    assert resolved["current"][0]["_id"] == resolved["id"]
    update = r.step("update")["docs"]
    assert [d["body"] for d in update] == ["hello"]
    assert set(update[0]) >= {"_id", "_creationTime", "author", "body"}
    assert r.step("update2")["bodies"] == ["hello", "again"]
    err = r.step("mutation_error")
    assert err["isConvexError"] is True and err["data"] == BAD
    assert "messages:fail" in err["message"]
    qerr = r.step("query_error")
    assert qerr["isConvexError"] is True and qerr["data"] == BAD
    assert r.step("query")["count"] == 2
    action = r.step("action")["result"]
    assert action["count"] == 3 and isinstance(action["id"], str)
    assert r.step("update3")["bodies"] == ["hello", "again", "from action"]


def test_values_round_trip_ws_and_http(npm: Any, server: Any) -> None:
    r = npm("values.mjs", server)
    sent = r.step("sent")["value"]
    # Spot-check the encoding the client used, so the comparison below means something.
    assert sent["int"] == {"$integer": "ewAAAAAAAAA="}
    assert sent["negInt"] == {"$integer": "//////////8="}
    assert sent["nan"] == {"$float": "AAAAAAAA+H8="}
    assert sent["negZero"] == {"$float": "AAAAAAAAAIA="}
    assert sent["bytes"] == {"$bytes": "AAEC/v8="}
    got = {(line["client"], line["kind"]): line["value"] for line in r.lines if "client" in line}
    assert set(got) == {
        ("ws", "query"),
        ("ws", "mutation"),
        ("ws", "action"),
        ("ws", "subscription"),
        ("http", "query"),
        ("http", "mutation"),
        ("http", "action"),
    }
    for key, value in got.items():
        assert value == sent, f"{key} returned {value}"


def test_paginated_subscription_grows(npm: Any, server: Any) -> None:
    r = npm("paginated.mjs", server)
    first = r.step("first_page")
    assert first["ns"] == [1, 2, 3] and first["status"] == "CanLoadMore"
    assert r.step("load_more_started")["started"] is True
    done = r.all("step", "exhausted") or [r.step("second_page")]
    assert done[-1]["ns"] == [1, 2, 3, 4, 5] and done[-1]["status"] == "Exhausted"
    assert r.step("grew_at_end")["ns"] == [1, 2, 3, 4, 5, 6]
    assert r.step("grew_inside")["ns"] == [1, 2, 2.5, 3, 4, 5, 6]
    final = r.step("grew_at_start")
    assert final["ns"] == [0, 1, 2, 2.5, 3, 4, 5, 6] and final["errors"] == []


def test_react_client_watch_and_optimistic_update(npm: Any, server: Any) -> None:
    r = npm("react_client.mjs", server)
    assert r.step("initial")["docs"] == []
    optimistic = r.step("optimistic")
    assert optimistic["ids"] == ["optimistic-temp"] and optimistic["bodies"] == ["optimistic"]
    resolved = r.step("resolved")
    # The optimistic document is replaced by the real one by the time the promise resolves.
    assert resolved["ids"] == [resolved["id"]] and resolved["bodies"] == ["optimistic"]
    rolled = r.step("rolled_back")
    assert rolled["failed"] is True and rolled["data"] == BAD
    assert rolled["ids"] == [resolved["id"]]
    assert r.step("notified")["count"] >= 2
    first = r.step("paginated_first")
    assert first["ns"] == [1, 2] and first["status"] == "CanLoadMore"
    assert r.step("paginated_grew")["ns"] == [1, 1.5, 2]


def test_http_client(npm: Any, server: Any) -> None:
    r = npm("http_client.mjs", server)
    new_id = r.step("mutation")["id"]
    docs = r.step("query")["docs"]
    assert [(d["_id"], d["body"]) for d in docs] == [(new_id, "over http")]
    assert r.step("action")["result"]["count"] == 2
    for step in ("mutation_error", "query_error"):
        line = r.step(step)
        assert line["isConvexError"] is True and line["data"] == BAD, line
    assert r.step("consistent_query")["count"] == 2
    pages = r.step("pages")["pages"]
    assert [n for p in pages for n in p["ns"]] == [1, 2, 3, 4, 5, 6, 7]
    assert all(len(p["ns"]) <= 3 for p in pages) and pages[0]["ns"] == [1, 2, 3]
    assert pages[-1]["isDone"] is True and not any(p["isDone"] for p in pages[:-1])
    assert {p["cursorType"] for p in pages} == {"string"}


def test_upload_from_node_and_download(npm: Any, server: Any) -> None:
    r = npm("upload.mjs", server)
    uploaded = r.step("uploaded")
    assert uploaded["status"] == 200 and isinstance(uploaded["storageId"], str)
    assert r.step("reused")["status"] >= 400  # an upload URL is single-use
    saved = r.step("saved")
    assert saved["size"] == 300 * 1024 and saved["contentType"] == "image/png"
    downloaded = r.step("downloaded")
    assert downloaded["sha256"] == downloaded["expected"] == saved["sha256"]
    part = r.step("range")
    assert part["status"] == 206 and part["equal"] is True
    assert part["contentRange"] == f"bytes 100-199/{300 * 1024}"
    assert r.step("action_stored") == {
        "step": "action_stored",
        "text": "from an action",
        "id": "string",
    }


def test_fanout_to_clients_with_and_without_compression(npm: Any, server: Any) -> None:
    """`ws` offers permessage-deflate: the shared fan-out frame goes compressed to those
    clients and plain to the one that does not offer it; all see the same results."""
    seen = npm("deflate_fanout.mjs", server).step("seen")
    assert seen["bodies"] == [seen["expected"]] * 4

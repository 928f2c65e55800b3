"""A mutation's MutationResponse reaches the official npm client before the Transition that
carries its write, also with 32 mutations in flight on one socket, so an optimistic update is
swapped for the server's document in one step (issue 9)."""

from __future__ import annotations

from typing import Any

import pytest

from pyconvex.protocol import decode_ts

pytestmark = pytest.mark.clients


def test_response_precedes_the_transition_with_its_write(npm: Any, server: Any) -> None:
    r = npm("mutation_order.mjs", server)
    updates = r.step("updates")
    burst = [f"burst-{i}" for i in range(32)]
    assert sorted(updates["final"]) == sorted(["one", *burst])
    # watchQuery never showed an item twice (optimistic and real side by side).
    assert updates["twice"] == []
    frames = r.step("frames")["frames"]
    responses = [f for f in frames if f["type"] == "MutationResponse"]
    assert len(responses) == 33 and all(f["success"] for f in responses)
    assert [f["requestId"] for f in responses] == sorted(f["requestId"] for f in responses)
    assert {f["id"] for f in responses} >= set(updates["ids"])
    for response in responses:
        at = frames.index(response)
        # No Transition before the response carries the document it wrote...
        assert not any(response["id"] in f.get("ids", []) for f in frames[:at]), response
        # ...and one after it does, at a timestamp at least the commit's.
        after = [f for f in frames[at:] if f["type"] == "Transition" and response["id"] in f["ids"]]
        assert after, response
        assert decode_ts(after[0]["endTs"]) >= decode_ts(response["ts"])

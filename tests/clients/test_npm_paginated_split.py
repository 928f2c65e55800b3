"""usePaginatedQuery rendered with React (react-test-renderer): a page that live inserts grow
past twice initialNumItems is split by the client into two subscriptions at the server's
splitCursor, and every render shows exactly the table's contents (issue 9 item 2)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

pytestmark = pytest.mark.clients


def test_use_paginated_query_splits_a_growing_page(npm: Any, server: Any) -> None:
    r = npm("paginated_react.mjs", server)
    assert r.step("first_page")["ns"] == [10, 20, 30]
    exhausted = r.step("exhausted")
    assert exhausted["ns"] == [10, 20, 30, 40, 50] and exhausted["pages"] == 2

    # Every render from the end of loading on equals the table at some moment, in order: no
    # item missing, doubled or out of place while pages split.
    states = r.step("states")["states"]
    renders = r.step("renders")["renders"][r.step("states_from")["render"] :]
    at = 0
    for render in renders:
        assert render["status"] == "Exhausted", render
        while at < len(states) and render["ns"] != states[at]:
            at += 1
        assert at < len(states), f"a render that was never the table: {render['ns']}"
    assert renders[-1]["ns"] == states[-1]

    # The client split page one (cursor null) into (null, split] and (split, end], then the
    # second half again: each split adds two queries bounded by the server's cursors and
    # removes the page they replace.
    mods = [m for batch in r.step("modifications")["sets"] for m in batch]
    opts = {m["queryId"]: m["opts"] for m in mods if m["type"] == "Add"}
    splits = 0
    for k, (one, two) in enumerate(itertools.pairwise(mods)):
        if not (one["type"] == two["type"] == "Add" and one["opts"].get("endCursor")):
            continue
        left, right = one["opts"], two["opts"]
        assert left["endCursor"] == right["cursor"]  # the server's splitCursor
        replaced = next(m for m in mods[k + 2 :] if m["type"] == "Remove")
        assert opts[replaced["queryId"]]["cursor"] == left["cursor"]
        splits += 1
    assert splits == 2, mods
    pages = r.step("pages")["pages"]
    assert len(pages) == 4
    # The live pages chain without a gap: each one starts where another ends.
    ends = {p.get("endCursor") for p in pages}
    assert all(p["cursor"] is None or p["cursor"] in ends for p in pages)

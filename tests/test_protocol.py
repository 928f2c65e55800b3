"""Server messages of the sync protocol (pyconvex/protocol.py): Transitions built as byte
pieces around results encoded once, whatever socket they go to."""

from __future__ import annotations

import json

from pyconvex.protocol import (
    StateVersion,
    query_modification,
    query_removed,
    query_result_body,
    shared_body,
    transition_parts,
)


def _json(parts: list[bytes]) -> object:
    return json.loads(b"".join(parts).decode())


def test_a_transition_is_its_pieces_back_to_back() -> None:
    body = query_result_body(["héllo ✓", 1.5], ["[LOG] 'x'"], None)
    shared = shared_body(body)
    parts = transition_parts(
        StateVersion(1, 0, 5),
        StateVersion(2, 1, 7),
        [query_modification(3, shared), query_removed(4), query_modification(9, shared)],
    )
    assert sum(part is shared for part in parts) == 2  # the result is not copied per query
    updated = {
        "type": "QueryUpdated",
        "value": ["héllo ✓", 1.5],
        "logLines": ["[LOG] 'x'"],
        "journal": None,
    }
    assert _json(parts) == {
        "type": "Transition",
        "startVersion": {"querySet": 1, "identity": 0, "ts": "BQAAAAAAAAA="},
        "endVersion": {"querySet": 2, "identity": 1, "ts": "BwAAAAAAAAA="},
        "modifications": [
            {"queryId": 3, **updated},
            {"type": "QueryRemoved", "queryId": 4},
            {"queryId": 9, **updated},
        ],
    }


def test_identical_transitions_are_built_once_and_different_ones_apart() -> None:
    shared = shared_body(query_result_body([1.0], [], None))
    start, end = StateVersion(1, 0, 5), StateVersion(1, 0, 6)
    first = transition_parts(start, end, [query_modification(0, shared)])
    assert transition_parts(start, end, [query_modification(0, shared)]) is first
    other_start = transition_parts(StateVersion(2, 0, 5), end, [query_modification(0, shared)])
    other_id = transition_parts(start, end, [query_modification(1, shared)])
    changed = shared_body(query_result_body([2.0], [], None))
    other_value = transition_parts(start, end, [query_modification(0, changed)])
    assert len({id(first), id(other_start), id(other_id), id(other_value)}) == 4
    assert _json(other_start)["startVersion"]["querySet"] == 2  # type: ignore[index]
    assert _json(other_id)["modifications"][0]["queryId"] == 1  # type: ignore[index]
    assert _json(other_value)["modifications"][0]["value"] == [2.0]  # type: ignore[index]
    assert _json(first)["modifications"][0]["value"] == [1.0]  # type: ignore[index]


def test_an_empty_transition() -> None:
    assert _json(transition_parts(StateVersion(), StateVersion(1), [])) == {
        "type": "Transition",
        "startVersion": {"querySet": 0, "identity": 0, "ts": "AAAAAAAAAAA="},
        "endVersion": {"querySet": 1, "identity": 0, "ts": "AAAAAAAAAAA="},
        "modifications": [],
    }

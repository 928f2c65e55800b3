"""The client's pieces without a server: its frames as the server parses them, server frames
parsed, the query set across sockets, requests resolving at their ts, names and URLs."""

from __future__ import annotations

import asyncio

import pytest

from pyconvex.client.connection import sync_url
from pyconvex.client.errors import ConnectionLostError, ConvexError
from pyconvex.client.function_names import function_path, wire_args
from pyconvex.client.local_state import LocalState
from pyconvex.client.requests import Request, RequestManager
from pyconvex.protocol import (
    Action,
    AddQuery,
    Authenticate,
    Connect,
    ModifyQuerySet,
    Mutation,
    ProtocolError,
    RemoveQuery,
    StateVersion,
    encode_ts,
    parse_client_message,
    transition_parts,
)
from pyconvex.protocol.client_side import (
    FunctionResponse,
    QueryFailed,
    QueryUpdated,
    Transition,
    encode_client_message,
    parse_server_message,
)
from pyconvex.server.references import FunctionReference
from pyconvex.values import Int64


@pytest.mark.parametrize(
    "message",
    [
        Connect("s-1", 2, "InitialConnect", None, 1.5),
        Connect("s-1", 3, "ConnectionLost", 77, 0.0),
        ModifyQuerySet(0, 1, (AddQuery(4, "m:list", [{"a": 1.0}], "j", None), RemoveQuery(2))),
        Mutation(9, "m:send", [{"body": "x"}], None),
        Action(10, "m:act", [{}], None),
        Authenticate(0, "User", "jwt"),
        Authenticate(1, "Admin", "key", {"subject": "u"}),
        Authenticate(2, "None", None),
    ],
)
def test_client_frames_parse_back_on_the_server(message: object) -> None:
    assert parse_client_message(encode_client_message(message)) == message  # type: ignore[arg-type]


def test_server_frames_parse() -> None:
    text = b"".join(
        transition_parts(
            StateVersion(0, 0, 0),
            StateVersion(1, 0, 5),
            [(b'{"queryId":3,', b'"type":"QueryUpdated","value":1,"logLines":[],"journal":"j"}')],
        )
    ).decode()
    t = parse_server_message(text)
    assert t == Transition(
        StateVersion(0, 0, 0), StateVersion(1, 0, 5), (QueryUpdated(3, 1, (), "j"),)
    )
    failed = parse_server_message(
        '{"type":"Transition","startVersion":{"querySet":1,"identity":0,"ts":"AAAAAAAAAAA="},'
        '"endVersion":{"querySet":1,"identity":0,"ts":"AAAAAAAAAAA="},"modifications":['
        '{"type":"QueryFailed","queryId":1,"errorMessage":"bad","logLines":["[LOG] x"],'
        '"errorData":null}]}'
    )
    assert isinstance(failed, Transition)
    assert failed.modifications == (QueryFailed(1, "bad", ("[LOG] x",), None, None, True),)
    response = parse_server_message(
        '{"type":"MutationResponse","requestId":4,"success":true,"result":null,'
        f'"ts":"{encode_ts(9)}","logLines":[]}}'
    )
    assert response == FunctionResponse("Mutation", 4, True, None, 9, (), None, False)
    with pytest.raises(ProtocolError, match="Unknown server message type"):
        parse_server_message('{"type":"Nope"}')
    with pytest.raises(ProtocolError, match="Malformed Transition"):
        parse_server_message('{"type":"Transition"}')


def test_query_set_survives_a_new_socket_with_its_journals() -> None:
    state = LocalState()
    a, _ = state.subscribe("m:list", {"x": 1.0})
    b, _ = state.subscribe("m:list", {"x": 2.0})
    first = state.take_modify_query_set()
    assert first is not None and (first.base_version, first.new_version) == (0, 1)
    state.save_journal(a.query_id, "end-cursor")
    assert state.unsubscribe(b.query_id)
    c, _ = state.subscribe("m:other", {})
    assert state.unsubscribe(c.query_id)  # never sent: dropped from the pending changes
    second = state.take_modify_query_set()
    assert second is not None and second.modifications == (RemoveQuery(b.query_id),)
    restart = state.restart()
    assert restart.modifications == (
        AddQuery(a.query_id, "m:list", [{"x": 1.0}], "end-cursor", None),
    )
    assert state.query_set_version == 1
    # Ids keep counting up across sockets.
    d, _ = state.subscribe("m:list", {"x": 3.0})
    assert d.query_id == 3


async def test_a_mutation_resolves_only_when_a_transition_reaches_its_ts() -> None:
    manager = RequestManager()
    loop = asyncio.get_running_loop()
    futures = [loop.create_future() for _ in range(3)]
    for i, kind in enumerate(["Mutation", "Mutation", "Action"]):
        manager.add(Request(manager.new_id(), kind, "m:f", f"frame{i}", futures[i], sent=True))
    assert (
        manager.on_response(FunctionResponse("Mutation", 0, True, 1.0, 50, (), None, False)) is None
    )
    failed = FunctionResponse("Mutation", 1, False, "nope", None, (), {"code": 1.0}, True)
    assert manager.on_response(failed) is not None
    assert isinstance(futures[1].exception(), ConvexError)
    assert manager.reached(49) == [] and not futures[0].done()
    # The socket drops: the unresolved mutation is sent again, the action fails.
    manager.connection_lost()
    assert isinstance(futures[2].exception(), ConnectionLostError)
    assert manager.resend() == ["frame0"]
    done = manager.reached(50)
    manager.resolve(done)
    assert futures[0].result() == 1.0 and manager.requests == {}


def test_function_names_and_arguments() -> None:
    assert function_path(FunctionReference("dir/mod:fn", "query", "public")) == "dir/mod:fn"
    assert function_path("mod.js:fn") == "mod:fn"
    assert function_path("mod") == "mod:default"
    with pytest.raises(ValueError, match="module:function"):
        function_path(":fn")
    with pytest.raises(TypeError, match="reference"):
        function_path(42)
    assert wire_args({"n": 2, "big": Int64(3), "b": b"\x01"}) == {
        "n": 2.0,
        "big": {"$integer": "AwAAAAAAAAA="},
        "b": {"$bytes": "AQ=="},
    }
    with pytest.raises(ValueError, match=r"Invalid arguments of m:f: .*\.args\.x"):
        wire_args({"x": object()}, " of m:f")


def test_deployment_urls() -> None:
    assert sync_url("http://127.0.0.1:3210") == "ws://127.0.0.1:3210/api/sync"
    assert sync_url("https://a.convex.cloud/") == "wss://a.convex.cloud/api/sync"
    assert sync_url("http://host/prefix/") == "ws://host/prefix/api/sync"
    for bad in ("127.0.0.1:3210", "ftp://x", "http://x/?q=1"):
        with pytest.raises(ValueError):
            sync_url(bad)

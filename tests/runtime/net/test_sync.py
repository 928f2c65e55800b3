"""The sync session state machine, driven in process against the fake deployment.

Each client is the real socket (:class:`SyncSocket`, websockets' Sans-I/O protocol) over a fake
transport: see support/sync_loopback.py.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from support.fake_deployment import FakeConvexError, FakeDeployment, FakeReader, FakeWriter
from support.sync_loopback import LoopbackClient

from pyconvex.protocol import decode_ts, encode_ts
from pyconvex.runtime.net.subscriptions import SubscriptionManager
from pyconvex.runtime.net.sync_session import OVERLOADED_REASON
from pyconvex.runtime.net.sync_socket import SyncConfig, SyncEndpoint


def Client(
    deployment: FakeDeployment, manager: SubscriptionManager, config: SyncConfig | None = None
) -> LoopbackClient:
    return LoopbackClient(SyncEndpoint(deployment, manager, config))


async def settle() -> None:
    """Let every ready callback and task run (the fake commits via call_soon)."""
    for _ in range(10):
        await asyncio.sleep(0)


@pytest.fixture
def deployment() -> FakeDeployment:
    d = FakeDeployment()

    @d.query("messages:list")
    def list_messages(db: FakeReader, args: dict[str, Any]) -> Any:
        db.log("listing")
        return [m["body"] for m in db.where("messages", "channel", args["channel"])]

    @d.query("messages:count")
    def count(db: FakeReader, args: dict[str, Any]) -> Any:
        return float(len(db.where("messages", "channel", args["channel"])))

    @d.query("messages:boom")
    def boom(db: FakeReader, args: dict[str, Any]) -> Any:
        raise FakeConvexError({"code": "BAD"})

    @d.query("messages:crash")
    def crash(db: FakeReader, args: dict[str, Any]) -> Any:
        raise RuntimeError("oops")

    @d.mutation("messages:send")
    def send(db: FakeWriter, args: dict[str, Any]) -> Any:
        return db.insert("messages", {"channel": args["channel"], "body": args["body"]})

    @d.mutation("messages:fail")
    def fail(db: FakeWriter, args: dict[str, Any]) -> Any:
        raise FakeConvexError({"code": "NOPE"})

    @d.action("messages:echo")
    async def echo(args: dict[str, Any]) -> Any:
        return args["value"]

    return d


@pytest.fixture
def manager(deployment: FakeDeployment) -> SubscriptionManager:
    return SubscriptionManager(deployment)


async def test_empty_modify_query_set_gets_an_empty_transition(
    deployment: FakeDeployment, manager: SubscriptionManager
) -> None:
    c = Client(deployment, manager)
    c.connect()
    assert c.pending() == []  # Connect is never answered
    c.modify()
    t = await c.transition()
    assert t["startVersion"] == {"querySet": 0, "identity": 0, "ts": "AAAAAAAAAAA="}
    assert t["endVersion"] == {"querySet": 1, "identity": 0, "ts": encode_ts(deployment.latest_ts)}
    assert t["modifications"] == []
    await c.stop()


async def test_add_query_sends_value_and_log_lines(
    deployment: FakeDeployment, manager: SubscriptionManager
) -> None:
    deployment.write(lambda db: db.insert("messages", {"channel": "a", "body": "hi"}))
    c = Client(deployment, manager)
    c.connect()
    c.add(1, "messages.js:list", {"channel": "a"})
    t = await c.transition()
    assert t["modifications"] == [
        {
            "type": "QueryUpdated",
            "queryId": 1,
            "value": ["hi"],
            "logLines": ["[LOG] 'listing'"],
            "journal": None,
        }
    ]
    c.modify({"type": "Remove", "queryId": 1})
    t = await c.transition()
    assert t["modifications"] == [{"type": "QueryRemoved", "queryId": 1}]
    assert len(manager) == 0
    await c.stop()


async def test_query_failures_carry_error_data_only_for_convex_errors(
    deployment: FakeDeployment, manager: SubscriptionManager
) -> None:
    c = Client(deployment, manager)
    c.connect()
    c.modify(
        {"type": "Add", "queryId": 1, "udfPath": "messages:boom", "args": [{}]},
        {"type": "Add", "queryId": 2, "udfPath": "messages:crash", "args": [{}]},
        {"type": "Add", "queryId": 3, "udfPath": "no such/path!", "args": [{}]},
        {"type": "Add", "queryId": 4, "udfPath": "messages:list", "args": ["not an object"]},
    )
    mods = {m["queryId"]: m for m in (await c.transition())["modifications"]}
    assert mods[1]["type"] == "QueryFailed" and mods[1]["errorData"] == {"code": "BAD"}
    assert mods[2]["type"] == "QueryFailed" and "errorData" not in mods[2]
    assert "oops" in mods[2]["errorMessage"]
    assert mods[3]["type"] == "QueryFailed" and "Invalid function path" in mods[3]["errorMessage"]
    assert mods[4]["type"] == "QueryFailed" and "args" in mods[4]["errorMessage"]
    assert all(m["logLines"] == [] for m in mods.values())
    assert c.session.stopped is False  # function-level problems are not fatal
    await c.stop()


@pytest.mark.parametrize("listeners_first", [False, True])
async def test_mutation_response_then_transition_at_its_ts(listeners_first: bool) -> None:
    deployment = FakeDeployment(listeners_first=listeners_first)
    deployment.queries["m:list"] = lambda db, a: [d["body"] for d in db.all("messages")]
    deployment.mutations["m:send"] = lambda db, a: db.insert("messages", {"body": a["body"]})
    manager = SubscriptionManager(deployment)
    c = Client(deployment, manager)
    c.connect()
    c.add(1, "m:list")
    await c.transition()
    c.send({"type": "Mutation", "requestId": 0, "udfPath": "m:send", "args": [{"body": "x"}]})
    before = []
    while (response := await c.recv())["type"] != "MutationResponse":
        before.append(response)
    assert response["success"] is True and response["logLines"] == []
    commit_ts = decode_ts(response["ts"])
    # Only a Transition *after* the response resolves the mutation in the clients.
    t = await c.transition()
    assert decode_ts(t["endVersion"]["ts"]) >= commit_ts
    updates = [m["value"] for f in [*before, t, *c.pending()] for m in f["modifications"]]
    assert updates == [["x"]]
    # Nothing came before the response, and the Transition right after it has the write.
    assert before == []
    assert [m["value"] for m in t["modifications"]] == [["x"]]
    await c.stop()


async def test_a_mutation_is_answered_in_the_turn_its_batch_becomes_durable() -> None:
    """The response and the Transition after it are written when the batch is durable (the
    committer's answer_when_durable), not on the loop's next turns."""
    deployment = FakeDeployment(listeners_first=True)  # as the committer does
    deployment.mutations["m:send"] = lambda db, a: db.insert("messages", {"body": a["body"]})
    c = Client(deployment, SubscriptionManager(deployment))
    c.connect()
    c.send({"type": "Mutation", "requestId": 0, "udfPath": "m:send", "args": [{"body": "x"}]})
    # It ran at once; its batch commits on the next turn, which this callback follows.
    loop = asyncio.get_running_loop()
    after_commit: asyncio.Future[list[str]] = loop.create_future()
    loop.call_soon(lambda: after_commit.set_result([f["type"] for f in c.pending()]))
    assert deployment.batches == 0
    assert await after_commit == ["MutationResponse", "Transition"]
    assert deployment.batches == 1
    await c.stop()


async def test_failed_mutation_has_error_data_and_no_ts(
    deployment: FakeDeployment, manager: SubscriptionManager
) -> None:
    c = Client(deployment, manager)
    c.connect()
    c.send({"type": "Mutation", "requestId": 3, "udfPath": "messages:fail", "args": [{}]})
    response = await c.recv()
    assert response == {
        "type": "MutationResponse",
        "requestId": 3,
        "success": False,
        "result": "ConvexError",
        "logLines": [],
        "errorData": {"code": "NOPE"},
    }
    # Rust completes a ConvexError mutation only on the next Transition.
    assert (await c.transition())["modifications"] == []
    await c.stop()


async def test_mutations_run_in_arrival_order(
    deployment: FakeDeployment, manager: SubscriptionManager
) -> None:
    c = Client(deployment, manager)
    c.connect()
    for i in range(5):
        c.send(
            {
                "type": "Mutation",
                "requestId": i,
                "udfPath": "messages:send",
                "args": [{"channel": "a", "body": str(i)}],
            }
        )
    responses = []
    while len(responses) < 5:
        frame = await c.recv()
        if frame["type"] == "MutationResponse":
            responses.append(frame)
    assert [r["requestId"] for r in responses] == [0, 1, 2, 3, 4]
    tss = [decode_ts(r["ts"]) for r in responses]
    assert tss == sorted(tss)
    await c.stop()


async def test_resent_mutation_is_idempotent_per_session_and_request(
    deployment: FakeDeployment, manager: SubscriptionManager
) -> None:
    first = Client(deployment, manager)
    first.connect()
    msg = {
        "type": "Mutation",
        "requestId": 7,
        "udfPath": "messages:send",
        "args": [{"channel": "a", "body": "once"}],
    }
    first.send(msg)
    r1 = await first.recv()
    await first.stop()
    again = Client(deployment, manager)  # npm reconnect: same sessionId, same requestId
    again.connect(connectionCount=1, maxObservedTimestamp=r1["ts"])
    again.send(msg)
    r2 = await again.recv()
    assert r2["result"] == r1["result"] and r2["ts"] == r1["ts"]
    assert deployment.mutation_runs == ["messages:send"]
    await again.stop()


async def test_action_gets_a_response_and_no_transition(
    deployment: FakeDeployment, manager: SubscriptionManager
) -> None:
    c = Client(deployment, manager)
    c.connect()
    c.send(
        {
            "type": "Action",
            "requestId": 1,
            "udfPath": "messages:echo",
            "args": [{"value": {"$integer": "ewAAAAAAAAA="}}],
        }
    )
    assert await c.recv() == {
        "type": "ActionResponse",
        "requestId": 1,
        "success": True,
        "result": {"$integer": "ewAAAAAAAAA="},
        "logLines": [],
    }
    await settle()
    assert c.pending() == []
    await c.stop()


async def test_bad_base_version_is_fatal(
    deployment: FakeDeployment, manager: SubscriptionManager
) -> None:
    c = Client(deployment, manager)
    c.connect()
    c.send({"type": "ModifyQuerySet", "baseVersion": 5, "newVersion": 6, "modifications": []})
    frame = await c.recv()
    assert frame["type"] == "FatalError" and "BaseVersionMismatch" in frame["error"]
    await asyncio.wait_for(c.gone.wait(), 10)
    assert c.close_frame is not None and c.close_frame.reason.startswith("ProtocolError")
    await c.stop()


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        ("not json", "not valid JSON"),
        ('{"type": "Nope"}', "unknown type"),
        ('{"type": "ModifyQuerySet", "baseVersion": 0, "modifications": []}', "newVersion"),
        ("[1, 2]", "expected a JSON object"),
    ],
)
async def test_malformed_frames_are_fatal(
    deployment: FakeDeployment, manager: SubscriptionManager, frame: str, expected: str
) -> None:
    c = Client(deployment, manager)
    c.connect()
    c.send(frame)
    error = await c.recv()
    assert error["type"] == "FatalError" and expected in error["error"]
    await c.stop()


async def test_messages_before_connect_and_duplicate_query_ids_are_fatal(
    deployment: FakeDeployment, manager: SubscriptionManager
) -> None:
    c = Client(deployment, manager)
    c.modify()
    assert "Connect" in (await c.recv())["error"]
    await c.stop()
    c = Client(deployment, manager)
    c.connect()
    c.add(1, "messages:count", {"channel": "a"})
    await c.transition()
    c.add(1, "messages:count", {"channel": "a"})
    assert "already in the query set" in (await c.recv())["error"]
    await c.stop()
    assert len(manager) == 0


async def test_client_ahead_of_server_is_refused_without_fatal_error(
    deployment: FakeDeployment, manager: SubscriptionManager
) -> None:
    c = Client(deployment, manager)
    c.connect(maxObservedTimestamp=encode_ts(deployment.latest_ts + 1))
    await asyncio.wait_for(c.gone.wait(), 10)
    assert c.pending() == []
    assert c.close_frame is not None and c.close_frame.code != 1000
    await c.stop()


async def test_identical_subscriptions_share_one_execution(
    deployment: FakeDeployment, manager: SubscriptionManager
) -> None:
    clients = [Client(deployment, manager) for _ in range(20)]
    for i, c in enumerate(clients):
        c.connect(session_id=f"s{i}")
        # Rust spells it "messages.js:list" after a reconnect: still the same subscription.
        c.add(1, "messages.js:list" if i % 2 else "messages:list", {"channel": "a"})
    for c in clients:
        assert (await c.transition())["modifications"][0]["value"] == []
    assert manager.executions == 1
    deployment.write(lambda db: db.insert("messages", {"channel": "a", "body": "hi"}))
    for c in clients:
        assert (await c.transition())["modifications"][0]["value"] == ["hi"]
    assert manager.executions == 2
    for c in clients:
        await c.stop()


async def test_write_outside_read_range_neither_reruns_nor_resends(
    deployment: FakeDeployment, manager: SubscriptionManager
) -> None:
    c = Client(deployment, manager)
    c.connect()
    c.add(1, "messages:list", {"channel": "a"})
    await c.transition()
    runs = manager.executions
    deployment.write(lambda db: db.insert("messages", {"channel": "b", "body": "elsewhere"}))
    deployment.write(lambda db: db.insert("other", {"channel": "a", "body": "other table"}))
    await settle()
    assert manager.executions == runs
    assert c.pending() == []
    deployment.write(lambda db: db.insert("messages", {"channel": "a", "body": "here"}))
    t = await c.transition()
    assert manager.executions == runs + 1
    assert t["modifications"][0]["value"] == ["here"]
    assert decode_ts(t["endVersion"]["ts"]) == deployment.latest_ts
    await c.stop()


async def test_rerun_with_unchanged_result_is_not_resent(
    deployment: FakeDeployment, manager: SubscriptionManager
) -> None:
    doc_id = ""

    def insert(db: FakeWriter) -> None:
        nonlocal doc_id
        doc_id = db.insert("messages", {"channel": "a", "body": "v1"})

    deployment.write(insert)
    c = Client(deployment, manager)
    c.connect()
    c.add(1, "messages:count", {"channel": "a"})
    await c.transition()
    runs = manager.executions
    deployment.write(lambda db: db.patch("messages", doc_id, {"body": "v2"}))
    await settle()
    assert manager.executions == runs + 1  # it read that row, so it re-ran...
    assert c.pending() == []  # ...but its result did not change


async def test_one_transition_per_commit_batch_with_all_changed_queries(
    deployment: FakeDeployment, manager: SubscriptionManager
) -> None:
    c = Client(deployment, manager)
    c.connect()
    c.modify(
        {"type": "Add", "queryId": 1, "udfPath": "messages:list", "args": [{"channel": "a"}]},
        {"type": "Add", "queryId": 2, "udfPath": "messages:count", "args": [{"channel": "b"}]},
        {"type": "Add", "queryId": 3, "udfPath": "messages:count", "args": [{"channel": "c"}]},
    )
    await c.transition()
    deployment.write_batch(
        lambda db: db.insert("messages", {"channel": "a", "body": "1"}),
        lambda db: db.insert("messages", {"channel": "b", "body": "2"}),
        lambda db: db.insert("messages", {"channel": "a", "body": "3"}),
    )
    t = await c.transition()
    assert {m["queryId"]: m["value"] for m in t["modifications"]} == {1: ["1", "3"], 2: 1.0}
    assert decode_ts(t["endVersion"]["ts"]) == deployment.latest_ts
    await settle()
    assert c.pending() == []
    await c.stop()


async def test_authenticate_none_bumps_identity_and_user_token_is_refused(
    deployment: FakeDeployment, manager: SubscriptionManager
) -> None:
    c = Client(deployment, manager)
    c.connect()
    c.add(1, "messages:count", {"channel": "a"})
    await c.transition()
    c.send({"type": "Authenticate", "baseVersion": 0, "tokenType": "None"})
    t = await c.transition()
    assert t["endVersion"]["identity"] == 1 and t["endVersion"]["querySet"] == 1
    c.send({"type": "Authenticate", "baseVersion": 1, "tokenType": "User", "value": "jwt"})
    error = await c.recv()
    assert error["type"] == "AuthError" and error["authUpdateAttempted"] is True
    assert error["baseVersion"] == 1 and "no sign-in providers" in error["error"]
    await asyncio.wait_for(c.gone.wait(), 10)
    await c.stop()


async def test_ping_after_idle_interval(
    deployment: FakeDeployment, manager: SubscriptionManager
) -> None:
    c = Client(deployment, manager, SyncConfig(ping_interval=0.01))
    c.connect()
    assert await c.recv() == {"type": "Ping"}
    await c.stop()


async def test_stuck_client_is_closed_without_stalling_others(
    deployment: FakeDeployment, manager: SubscriptionManager
) -> None:
    config = SyncConfig(max_outbound_bytes=2_000, close_timeout=0.01)
    stuck = Client(deployment, manager, config)
    stuck.transport.stuck = True  # the peer reads nothing
    healthy = Client(deployment, manager, config)
    for i, c in enumerate((stuck, healthy)):
        c.connect(session_id=f"s{i}")
        c.add(1, "messages:list", {"channel": "a"})
    await healthy.transition()
    for n in range(40):
        deployment.write(lambda db, n=n: db.insert("messages", {"channel": "a", "body": "x" * n}))
        assert len((await healthy.transition())["modifications"]) == 1
        if stuck.socket.closed:
            break
    assert stuck.socket.closed, "the stuck client was never disconnected"
    await asyncio.wait_for(stuck.gone.wait(), 10)
    assert stuck.transport.aborted  # its close frame could not be written either
    deployment.write(lambda db: db.insert("messages", {"channel": "a", "body": "after"}))
    assert (await healthy.transition())["modifications"][0]["value"][-1] == "after"
    await healthy.stop()


async def test_slow_client_gets_an_overload_close_reason(
    deployment: FakeDeployment, manager: SubscriptionManager
) -> None:
    c = Client(deployment, manager, SyncConfig(max_outbound_bytes=300, close_timeout=10))
    c.transport.stuck = True
    c.connect()
    c.add(1, "messages:list", {"channel": "a"})
    for n in range(20):
        deployment.write(lambda db, n=n: db.insert("messages", {"channel": "a", "body": "x" * n}))
        await settle()
        if c.socket.closed:
            break
    assert c.socket.closed
    c.transport.unstick()  # the client catches up and reads the close frame
    assert c.close_frame is not None
    assert c.close_frame.code == 1013
    assert c.close_frame.reason.startswith(OVERLOADED_REASON)
    await asyncio.wait_for(c.gone.wait(), 10)  # it answered the close: the server hung up
    assert not c.transport.aborted


@pytest.mark.parametrize("listeners_first", [False, True])
async def test_many_mutations_in_flight_answer_before_their_transition_without_delaying_others(
    deployment: FakeDeployment, listeners_first: bool
) -> None:
    deployment.listeners_first = listeners_first  # True: as the committer does
    manager = SubscriptionManager(deployment)
    writer = Client(deployment, manager)
    observer = Client(deployment, manager)
    for i, c in enumerate((writer, observer)):
        c.connect(session_id=f"s{i}")
        c.add(1, "messages:list", {"channel": "a"})
        await c.transition()
    n = 40
    for i in range(n):
        writer.mutation(i, "messages:send", {"channel": "a", "body": str(i)})
    # They ran one after another without waiting to be durable: one commit batch for all.
    assert deployment.mutation_runs == ["messages:send"] * n
    responded: list[int] = []
    shown: list[str] = []
    while len(responded) < n or len(shown) < n:
        frame = await writer.recv()
        if frame["type"] == "MutationResponse":
            assert frame["success"] is True
            responded.append(frame["requestId"])
            # The other socket's Transition went out in the same write round, not after.
            assert not observer.frames.empty()
        else:
            assert frame["type"] == "Transition"
            for m in frame["modifications"]:
                shown = m["value"]
                # Only writes whose responses came first.
                assert {int(body) for body in shown} <= set(responded)
    assert responded == list(range(n))
    assert deployment.batches == 1
    seen = (await observer.transition())["modifications"][0]["value"]
    assert seen == [str(i) for i in range(n)]
    await writer.stop()
    await observer.stop()


async def test_a_failed_batch_fails_every_mutation_that_ran_after_it(
    deployment: FakeDeployment, manager: SubscriptionManager
) -> None:
    @deployment.mutation("messages:count_now")
    def count_now(db: FakeWriter, args: dict[str, Any]) -> Any:
        return float(len(db.where("messages", "channel", "a")))

    @deployment.mutation("messages:refuse_if_any")
    def refuse_if_any(db: FakeWriter, args: dict[str, Any]) -> Any:
        if db.where("messages", "channel", "a"):
            raise FakeConvexError({"code": "NOT_EMPTY"})

    c = Client(deployment, manager)
    c.connect()
    c.add(1, "messages:list", {"channel": "a"})
    await c.transition()
    deployment.fail_next_batch = True
    c.mutation(0, "messages:send", {"channel": "a", "body": "lost"})
    c.mutation(1, "messages:count_now", {})  # read-only: it read the lost write
    c.mutation(2, "messages:refuse_if_any", {})  # failed because of the lost write
    responses = [await c.recv() for _ in range(3)]
    assert [r["requestId"] for r in responses] == [0, 1, 2]
    for r in responses:
        assert r["success"] is False and "the disk is full" in r["result"], r
        assert "errorData" not in r  # not the ConvexError the handler raised
    assert (await c.transition())["modifications"] == []
    c.mutation(3, "messages:send", {"channel": "a", "body": "kept"})
    assert (await c.recv())["success"] is True
    assert (await c.transition())["modifications"][0]["value"] == ["kept"]
    await c.stop()


async def test_a_result_that_is_not_a_convex_value_fails_with_a_request_id(
    deployment: FakeDeployment, manager: SubscriptionManager
) -> None:
    deployment.queries["m:set"] = lambda db, a: {1, 2}
    deployment.mutations["m:set"] = lambda db, a: {1, 2}
    c = Client(deployment, manager)
    c.connect()
    c.add(1, "m:set")
    (mod,) = (await c.transition())["modifications"]
    assert mod["type"] == "QueryFailed"
    rid = r"\[Request ID: [0-9a-f]{16}\] Server Error\n"
    assert re.match(rid + "m:set returned an invalid", mod["errorMessage"])
    c.send({"type": "Mutation", "requestId": 0, "udfPath": "m:set", "args": [{}]})
    while (response := await c.recv())["type"] != "MutationResponse":
        pass
    assert response["success"] is False
    assert re.match(rid, response["result"])
    await c.stop()

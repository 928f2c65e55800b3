"""ConvexClient, the blocking client: used from several threads at once, waiting without the GIL,
callbacks on its own thread, closing."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from pyconvex.client import ClientClosedError, ClientError, ConvexClient, ConvexError
from pyconvex.dev.launcher import DevServer


def test_many_threads_share_one_client(server: DevServer) -> None:
    author = uuid.uuid4().hex
    threads, each = 8, 10
    with ConvexClient(server.url) as client:
        sub = client.subscribe("messages:count", {"author": author})
        assert sub.first(timeout=30) == 0.0
        seen: list[float] = []

        def watch() -> None:
            for count in sub:
                seen.append(count)
                if count == threads * each:
                    return

        watcher = threading.Thread(target=watch)
        watcher.start()

        def work(t: int) -> list[str]:
            ids = []
            for i in range(each):
                args = {"author": author, "body": f"{t}-{i}"}
                ids.append(client.mutation("messages:send", args, timeout=30))
                # Read-your-writes holds in every thread.
                assert client.query("messages:count", {"author": author}, timeout=30) >= i + 1
            return ids

        with ThreadPoolExecutor(threads) as pool:
            ids = [i for chunk in pool.map(work, range(threads)) for i in chunk]
        watcher.join(30)
        assert not watcher.is_alive()
        assert len(set(ids)) == threads * each
        assert seen[-1] == threads * each and seen == sorted(seen)
        assert sub.value == threads * each
        assert client.connection_state().in_flight_mutations == 0
        sub.close()


def test_a_waiting_thread_does_not_hold_the_gil(server: DevServer) -> None:
    # The main thread waits for an update that only another Python thread can cause: were
    # the GIL held while waiting, that thread could never run and this would hang.
    author = uuid.uuid4().hex
    with ConvexClient(server.url) as client:
        sub = client.subscribe("messages:count", {"author": author})
        updates = iter(sub)
        assert next(updates) == 0.0

        def later() -> None:
            total = sum(i * i for i in range(200_000))  # pure Python: needs the GIL
            client.mutation("messages:send", {"author": author, "body": str(total)})

        worker = threading.Thread(target=later)
        worker.start()
        assert next(updates) == 1.0
        worker.join(30)


def test_callbacks_run_on_the_client_thread(server: DevServer) -> None:
    author = uuid.uuid4().hex
    with ConvexClient(server.url) as client:
        got = threading.Event()
        problems: list[BaseException] = []
        names: list[str] = []

        def on_update(value: Any) -> None:
            names.append(threading.current_thread().name)
            try:
                client.query("messages:count", {"author": author})
            except ClientError as e:
                problems.append(e)
            got.set()

        sub = client.subscribe("messages:count", {"author": author}, on_update=on_update)
        assert got.wait(30)
        assert names[0].startswith("pyconvex client")
        assert problems and "own thread" in str(problems[0])
        sub.close()


def test_errors_and_closing(server: DevServer) -> None:
    client = ConvexClient(server.url)
    with pytest.raises(ConvexError) as caught:
        client.mutation("messages:send", {"author": "a", "body": ""})
    assert caught.value.data == {"code": "EMPTY_BODY"}
    sub = client.subscribe("messages:count", {"author": "a"})
    sub.first(timeout=30)
    client.close()
    assert list(sub) == []  # ended, without a value
    with pytest.raises(ClientClosedError):
        client.query("messages:count", {"author": "a"})
    client.close()  # idempotent


def test_a_snapshot_from_another_thread_is_one_transition(server: DevServer) -> None:
    slots = 30
    with ConvexClient(server.url) as watcher, ConvexClient(server.url) as writer:
        writer.mutation("counters:bump_all", {"slots": slots}, timeout=30)
        subs = [watcher.subscribe("counters:get", {"slot": float(i)}) for i in range(slots)]
        for sub in subs:
            sub.first(timeout=30)
        final = (subs[-1].value or 0.0) + 10
        stop = threading.Event()
        seen: list[set[Any]] = []

        def read() -> None:
            while not stop.is_set():
                snap = watcher.snapshot()
                seen.append({snap[sub] for sub in subs})

        reader = threading.Thread(target=read)
        reader.start()
        try:
            for _ in range(10):
                writer.mutation("counters:bump_all", {"slots": slots}, timeout=30)
            for value in subs[-1]:  # until the watcher has the last bump
                if value == final:
                    break
        finally:
            stop.set()
            reader.join(30)
        assert len(seen) > 1
        assert all(len(values) == 1 for values in seen)
        assert watcher.snapshot()[subs[0]] == final

"""PyPI convex.ConvexClient (WebSocket, Rust core) against a pyconvex server."""

from __future__ import annotations

import os

from common import deadline, enc, out, run, special_values
from convex import ConvexClient, ConvexError, ConvexInt64


def main(url: str) -> None:
    client = ConvexClient(url)
    author = f"py-ws-{os.getpid()}"

    sub = client.subscribe("messages:list", {"author": author})
    first = next(sub)
    out(step="initial", docs=enc(first))
    new_id = client.mutation("messages:send", {"author": author, "body": "hello"})
    updated = next(sub)
    out(step="update", id=new_id, bodies=[d["body"] for d in updated])
    sub.unsubscribe()

    try:
        with deadline("mutation messages:fail (raises ConvexError)"):
            client.mutation("messages:fail", {})
        out(step="mutation_error", raised=False)
    except ConvexError as e:
        out(step="mutation_error", raised=True, data=enc(e.data))
    except TimeoutError as e:  # record and go on, so the remaining steps still report
        out(step="mutation_error", raised=False, hung=str(e))

    try:
        with deadline("query messages:fail_query (raises ConvexError)"):
            client.query("messages:fail_query", {})
        out(step="query_error", raised=False)
    except ConvexError as e:
        out(step="query_error", raised=True, data=enc(e.data))
    except TimeoutError as e:
        out(step="query_error", raised=False, hung=str(e))

    docs = client.query("messages:list", {"author": author})
    out(step="query", count=len(docs))
    result = client.action("messages:send_via_action", {"author": author, "body": "via action"})
    out(step="action", result=enc(result))

    value = special_values()
    out(step="sent", value=enc(value))
    for kind, name in (
        ("query", "messages:echo"),
        ("mutation", "messages:echo_mutation"),
        ("action", "messages:echo_action"),
    ):
        fn = getattr(client, kind)
        out(step="echo", kind=kind, value=enc(fn(name, {"value": value})))
    got = client.query("messages:echo", {"value": ConvexInt64(5)})
    out(step="int64_type", type=type(got).__name__, value=getattr(got, "value", None))


run(main)

"""PyPI convex.http_client.ConvexHttpClient (legacy HTTP client) against a pyconvex server."""

from __future__ import annotations

import os

from common import enc, out, run, special_values
from convex import ConvexError
from convex.http_client import ConvexHttpClient


def main(url: str) -> None:
    client = ConvexHttpClient(url)
    author = f"py-http-{os.getpid()}"

    new_id = client.mutation("messages:send", {"author": author, "body": "over http"})
    out(step="mutation", id=new_id)
    docs = client.query("messages:list", {"author": author})
    out(step="query", bodies=[d["body"] for d in docs])
    result = client.action("messages:send_via_action", {"author": author, "body": "via action"})
    out(step="action", result=enc(result))

    try:
        client.mutation("messages:fail", {})
        out(step="mutation_error", raised=False)
    except ConvexError as e:
        out(step="mutation_error", raised=True, data=enc(e.data))
    try:
        client.query("messages:fail_query", {})
        out(step="query_error", raised=False)
    except ConvexError as e:
        out(step="query_error", raised=True, data=enc(e.data))

    value = special_values()
    out(step="sent", value=enc(value))
    for kind, name in (
        ("query", "messages:echo"),
        ("mutation", "messages:echo_mutation"),
        ("action", "messages:echo_action"),
    ):
        fn = getattr(client, kind)
        out(step="echo", kind=kind, value=enc(fn(name, {"value": value})))


run(main, limit_s=30)

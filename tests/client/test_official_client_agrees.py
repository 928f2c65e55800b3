"""The same deployment read by pyconvex's client and by the official PyPI `convex` client (run
in a child process: its blocking calls hold the GIL) gives the same values."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import uuid
from typing import Any

from pyconvex.client import ConvexClient
from pyconvex.dev.launcher import DevServer
from pyconvex.values import Int64

VALUES: dict[str, Any] = {
    "int64": Int64(-(2**62) - 3),
    "floats": [1.5, 7, -0.0, math.inf, -math.inf, math.nan, 2.0**53],
    "bytes": b"\x00\x01\xfe\xff",
    "text": "héllo ✓",
    "nested": {"a": [True, False, None, {"b": Int64(0)}], "empty": {}, "list": []},
}

# Reads every key, a subscription's first result, and a one-off query, with the official
# client; prints them normalised as one JSON line.
OFFICIAL = """
import json, math, sys
from convex import ConvexClient, ConvexInt64

def norm(v):
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, ConvexInt64):
        return ["int64", v.value]
    if isinstance(v, float):
        return ["float", repr(v)]
    if isinstance(v, bytes):
        return ["bytes", v.hex()]
    if isinstance(v, list):
        return [norm(x) for x in v]
    if isinstance(v, dict):
        return {k: norm(x) for k, x in v.items()}
    return ["unexpected", repr(v)]

url, tag, keys = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
client = ConvexClient(url)
out = {k: norm(client.query("values:get", {"key": tag + k})) for k in keys}
out["messages"] = norm(next(client.subscribe("messages:list", {"author": tag})))
out["count"] = norm(client.query("messages:count", {"author": tag}))
print("@@" + json.dumps(out))
"""


def _norm(v: Any) -> Any:
    if v is None or isinstance(v, bool | str):
        return v
    if isinstance(v, Int64):
        return ["int64", int(v)]
    if isinstance(v, float):
        return ["float", repr(v)]
    if isinstance(v, bytes):
        return ["bytes", v.hex()]
    if isinstance(v, list):
        return [_norm(x) for x in v]
    if isinstance(v, dict):
        return {k: _norm(x) for k, x in v.items()}
    return ["unexpected", repr(v)]


def test_pyconvex_and_the_official_client_read_the_same_values(server: DevServer) -> None:
    tag = uuid.uuid4().hex[:8]
    with ConvexClient(server.url) as client:
        for key, value in VALUES.items():
            client.mutation("values:put", {"key": tag + key, "value": value}, timeout=30)
        for body in ("one", "two"):
            client.mutation("messages:send", {"author": tag, "body": body}, timeout=30)
        ours = {k: _norm(client.query("values:get", {"key": tag + k}, timeout=30)) for k in VALUES}
        with client.subscribe("messages:list", {"author": tag}) as sub:
            ours["messages"] = _norm(sub.first(timeout=30))
        ours["count"] = _norm(client.query("messages:count", {"author": tag}, timeout=30))

    done = subprocess.run(
        [sys.executable, "-c", OFFICIAL, server.url, tag, json.dumps(list(VALUES))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    lines = [line[2:] for line in done.stdout.splitlines() if line.startswith("@@")]
    assert lines, done.stdout + done.stderr
    theirs = json.loads(lines[-1])
    assert ours == json.loads(json.dumps(ours))  # nothing lost by the JSON round trip
    assert theirs == ours
    # And the values are what was written (Int64 stays Int64, a Python int became a float).
    assert ours["int64"] == ["int64", -(2**62) - 3]
    assert ours["floats"][1] == ["float", "7.0"] and ours["floats"][5] == ["float", "nan"]
    assert len(ours["messages"]) == 2

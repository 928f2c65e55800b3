"""With convex/_generated/api.py, client calls type-check under mypy --strict: the arguments
TypedDict in, the return type out; a wrong argument type or function kind is an error."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

from pyconvex.dev.launcher import DevServer

# Each line ending in "# error: <text>" must get a mypy error containing <text>; no other
# line may get one.
PROGRAM = """
from typing import Any

from _generated.api import api

from pyconvex import Id
from pyconvex.client import AsyncConvexClient, ConvexClient, Subscription


async def right(client: AsyncConvexClient) -> None:
    n: float = await client.query(api.messages.count, {"author": "a"})
    new_id: Id[Any] = await client.mutation(api.messages.send, {"author": "a", "body": "b"})
    sub: Subscription[float] = client.subscribe(api.messages.count, {"author": "a"})
    current: float | None = sub.value
    docs = await client.query(api.messages.list, {})
    echoed = await client.action(api.values.echo, {"value": [1, b"x"]})
    by_name = await client.query("messages:count", {"author": "a"})
    print(n, new_id, current, docs, echoed, by_name)


def right_blocking(client: ConvexClient) -> None:
    n: float = client.query(api.messages.count, {"author": "a"}, timeout=5)
    for count in client.subscribe(api.messages.count, {"author": "a"}):
        total: float = count + n
        print(total)


async def wrong(client: AsyncConvexClient) -> None:
    await client.query(api.messages.count, {"author": 1})  # error: expected "MessagesCountArgs
    await client.mutation(api.messages.send, {"author": "a"})  # error: expected "MessagesSendArgs
    text: str = await client.query(api.messages.count, {"author": "a"})  # error: MessagesCountArgs, float]
    await client.query(api.messages.send, {"author": "a", "body": "b"})  # error: Literal['query'], MessagesSendArgs


def wrong_blocking(client: ConvexClient) -> None:
    client.mutation(api.messages.send, {"author": "a", "body": 2})  # error: expected "MessagesSendArgs
"""


def test_mypy_checks_calls_through_generated_references(server: DevServer, tmp_path: Path) -> None:
    generated = server.project / "convex" / "_generated" / "api.py"
    assert generated.exists(), "pyconvex dev did not write _generated/api.py"
    program = tmp_path / "program.py"
    program.write_text(textwrap.dedent(PROGRAM).lstrip())
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--cache-dir",
            str(tmp_path / "c"),
            "program.py",
        ],
        cwd=tmp_path,
        env={**os.environ, "MYPYPATH": str(server.project / "convex")},
        capture_output=True,
        text=True,
        timeout=300,
    )
    errors: dict[int, list[str]] = {}
    for line in done.stdout.splitlines():
        m = re.match(r"program\.py:(\d+): error: (.*)", line)
        if m:
            errors.setdefault(int(m.group(1)), []).append(m.group(2))
    expected = {
        number: marker.split("# error: ", 1)[1]
        for number, marker in enumerate(program.read_text().splitlines(), start=1)
        if "# error: " in marker
    }
    assert set(errors) == set(expected), done.stdout
    for number, text in expected.items():
        assert any(text in message for message in errors[number]), (number, errors[number])

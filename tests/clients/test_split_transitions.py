"""The official clients take an update split over several Transitions at one ts (issue 10,
item 3: a Transition carries at most ``max_transition_bytes``; here 64 KiB, so a commit
changing 20 results of 10 KB each goes out in four)."""

from __future__ import annotations

import asyncio
import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from support.live_sync import live_server
from support.npm import CLIENTS, node_with_client_deps

from pyconvex.dev.launcher import child_env
from pyconvex.runtime.functions.deployment import Deployment
from pyconvex.runtime.net.sync_socket import SyncConfig

pytestmark = pytest.mark.clients

SPLIT = """
from pyconvex import mutation, query, v

@query(args={"slot": v.float64(), "size": v.float64()})
async def blob(ctx, slot, size):
    messages = await ctx.db.query("messages").collect()
    return f"{int(slot)}:{len(messages)}:" + "x" * int(size)

@mutation(args={"body": v.string()})
async def send(ctx, body):
    return await ctx.db.insert("messages", {"body": body})
"""


async def run_client(*command: str) -> list[dict[str, Any]]:
    proc = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env=child_env(), cwd=CLIENTS,
    )  # fmt: skip
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), 90)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    text = out.decode()
    lines = [json.loads(line[2:]) for line in text.splitlines() if line.startswith("@@")]
    assert lines and lines[-1].get("done"), text[-3000:]
    return lines


@pytest.mark.parametrize("client", ["npm", "pypi"])
async def test_official_clients_take_split_transitions(tmp_path: Path, client: str) -> None:
    functions = tmp_path / "convex"
    functions.mkdir()
    (functions / "split.py").write_text(textwrap.dedent(SPLIT))
    dep = await Deployment.open(functions, None)
    try:
        async with live_server(dep, SyncConfig(max_transition_bytes=64 * 1024)) as srv:
            if client == "npm":
                node = node_with_client_deps("the split-Transition test")
                lines = await run_client(node, str(CLIENTS / "js" / "split_transitions.mjs"),
                                         srv.url)  # fmt: skip
            else:
                lines = await run_client(sys.executable,
                                         str(CLIENTS / "py" / "split_transitions.py"), srv.url)  # fmt: skip
    finally:
        await dep.close()
    before = lines[0]["before"]
    assert lines[1] == {"step": "updated", "counts": [before + 1] * 20}

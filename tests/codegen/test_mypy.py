"""The generated modules type-check user code under ``mypy --strict``: the example project
passes, and mistakes through the generated types are reported where they are made."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pyconvex.codegen import generate

# Every line ending in "# error: <text>" must get a mypy error containing <text>; no other
# line of the project may get one. (A bad patch is reported against the audit_log overload:
# mypy names the first overload that matches with type arguments erased, and that table's
# documents are v.any().)
BAD = """
from typing import Literal

from pyconvex import Id, v

from ._generated.api import api, internal
from ._generated.server import (
    ActionCtx, MutationCtx, QueryCtx, UserIdentity, action, mutation, query,
)


@query
async def wrong_table(ctx: QueryCtx) -> None:
    await ctx.db.query("mesages").collect()  # error: No overload variant of "query"


@mutation
async def wrong_field_type(ctx: MutationCtx, channel: Id[Literal["channels"]]) -> None:
    await ctx.db.insert("messages", {"body": 1})  # error: No overload variant of "insert"
    await ctx.db.insert("channels", {"name": 1})  # error: No overload variant of "insert"
    await ctx.db.patch(channel, {"title": "x"})  # error: "patch" of "DatabaseWriter"


@action
async def wrong_argument_type(ctx: ActionCtx, channel: Id[Literal["channels"]]) -> None:
    await ctx.run_mutation(api.messages.send, {"body": 1})  # error: "MessagesSendArgs
    await ctx.run_query(api.messages.send, {"channel": channel, "author": "a", "body": "b"})  # error: "run_query"
    await ctx.run_mutation(internal.admin.audit.record, {})  # error: "AdminAuditRecordArgs
    n: str = await ctx.run_query(api.messages.count)  # error: NoArgs, float]


@mutation
async def wrong_scheduling(ctx: MutationCtx, channel: Id[Literal["channels"]]) -> None:
    await ctx.scheduler.run_after(0, api.messages.send, {"body": 1})  # error: "run_after" of "Scheduler"
    await ctx.scheduler.run_at(0, api.messages.count)  # error: "run_at" of "Scheduler"
    await ctx.storage.store(b"x")  # error: "StorageWriter" has no attribute "store"


@query
async def queries_cannot_schedule(ctx: QueryCtx) -> None:
    await ctx.storage.generate_upload_url()  # error: "StorageReader" has no attribute
    await ctx.scheduler.run_after(0, "a:b")  # error: "QueryCtx" has no attribute "scheduler"


@query
async def wrong_index(ctx: QueryCtx) -> None:
    await ctx.db.query("messages").with_index("by_chanel").collect()  # error: "with_index"


@query
async def wrong_id_table(ctx: QueryCtx, channel: Id[Literal["channels"]]) -> str:
    message = await ctx.db.get(channel)
    return "" if message is None else message["body"]  # error: "ChannelsDoc" has no key "body"


@query  # error: "FunctionDecorator"
async def wrong_ctx(ctx: MutationCtx) -> None: ...


@query
async def identity_may_be_none(ctx: QueryCtx) -> str:
    identity = await ctx.auth.get_user_identity()
    return identity.subject  # error: Item "None" of "UserIdentity | None" has no attribute


@query
async def claims_may_be_missing(ctx: QueryCtx) -> str:
    identity: UserIdentity | None = await ctx.auth.get_user_identity()
    if identity is None:
        return ""
    return identity.email  # error: Incompatible return value type (got "str | None"


@query(args={"x": v.string()})
async def queries_cannot_write(ctx: QueryCtx, x: str) -> None:
    await ctx.db.insert("channels", {"name": "x"})  # error: "DatabaseReader" has no attribute "insert"
"""


@pytest.fixture(scope="module")
def mypy_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mypy_cache")


def _mypy(root: Path, cache: Path) -> list[tuple[str, int, str]]:
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(cache), "convex"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=600,
    )
    errors = []
    for line in done.stdout.splitlines():
        found = re.match(r"(.+?):(\d+): error: (.*)", line)
        if found:
            errors.append((Path(found[1]).as_posix(), int(found[2]), found[3]))
    assert done.returncode in (0, 1), done.stdout + done.stderr
    return errors


def test_the_example_project_passes_mypy_strict(chat_project: Path, mypy_cache: Path) -> None:
    generate(chat_project / "convex")
    assert _mypy(chat_project, mypy_cache) == []


def test_mistakes_through_the_generated_types_are_mypy_errors(
    chat_project: Path, mypy_cache: Path
) -> None:
    source = textwrap.dedent(BAD).lstrip("\n")
    (chat_project / "convex" / "bad.py").write_text(source)
    generate(chat_project / "convex")  # the bad module imports and registers fine at run time
    expected = {
        i: marker.split("# error: ", 1)[1]
        for i, marker in enumerate(source.splitlines(), 1)
        if "# error: " in marker
    }
    errors = _mypy(chat_project, mypy_cache)
    assert {(path, line) for path, line, _ in errors} == {
        ("convex/bad.py", line) for line in expected
    }, "\n".join(f"{p}:{n}: {m}" for p, n, m in errors)
    for _, line, message in errors:
        assert expected[line] in message, f"line {line}: {message}"

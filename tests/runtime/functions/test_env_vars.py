"""Deployment environment variables: names and values checked, set through a durable
transaction, read by queries (reactively), mutations and actions through ``pyconvex.env``."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.deployment import CommitLog, DeploymentFactory, failure_message, ok

from pyconvex import env
from pyconvex.errors import PyconvexError
from pyconvex.runtime.functions.env_vars import (
    ENV_TABLE,
    MAX_VALUE_BYTES,
    SET_PATH,
    EnvVarError,
    check_name,
    check_value,
    read_variables,
)

FUNCTIONS = {
    "config.py": """
        from pyconvex import action, env, mutation, query


        @query
        async def model(ctx) -> str | None:
            return env.get("MODEL")


        @query
        async def required(ctx) -> str:
            return env["API_KEY"]


        @query
        async def everything(ctx) -> dict[str, str]:
            return dict(env)


        @mutation
        async def remember(ctx) -> str:
            await ctx.db.insert("notes", {"model": env.get("MODEL", "none")})
            return env.get("MODEL", "none")


        @action
        async def from_action(ctx) -> list[str | None]:
            return [env.get("MODEL"), await ctx.run_query("config:model", {})]
    """
}


async def set_var(dep: object, name: str, value: str | None) -> str:
    result = await dep.run_mutation(  # type: ignore[attr-defined]
        SET_PATH, {"name": name, "value": value}, allow_internal=True
    )
    return ok(result)  # type: ignore[no-any-return]


@pytest.mark.parametrize("name", ["A", "OPENAI_API_KEY", "x1_y2", "A" * 40])
def test_good_names(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "non-empty"),
        ("1ABC", "starting with a letter"),
        ("_X", "starting with a letter"),
        ("MY-KEY", "letters, digits and '_'"),
        ("A" * 41, "the limit is 40"),
        (3, "non-empty string"),
    ],
)
def test_bad_names_are_explained(name: object, message: str) -> None:
    with pytest.raises(EnvVarError, match=message):
        check_name(name)


def test_values_are_strings_of_at_most_8_kib() -> None:
    assert check_value("A", "x" * MAX_VALUE_BYTES) == "x" * MAX_VALUE_BYTES
    with pytest.raises(EnvVarError, match="8192 bytes"):
        check_value("A", "é" * MAX_VALUE_BYTES)  # 2 bytes each in UTF-8
    with pytest.raises(EnvVarError, match="must be a string"):
        check_value("A", 3)


async def test_set_update_remove_and_read_everywhere(deployment: DeploymentFactory) -> None:
    dep = await deployment(FUNCTIONS)
    assert ok(dep.run_query("config:model")) is None
    assert await set_var(dep, "MODEL", "gpt-1") == "created"
    assert await set_var(dep, "MODEL", "gpt-1") == "unchanged"
    assert await set_var(dep, "MODEL", "gpt-2") == "updated"
    assert await set_var(dep, "OTHER", "x") == "created"
    assert ok(dep.run_query("config:model")) == "gpt-2"
    # Every deployment also has its URLs (CONVEX_CLOUD_URL, CONVEX_SITE_URL), as Convex's.
    assert ok(dep.run_query("config:everything")) == {
        "MODEL": "gpt-2",
        "OTHER": "x",
        "CONVEX_CLOUD_URL": "http://127.0.0.1:3210",
        "CONVEX_SITE_URL": "http://127.0.0.1:3211",
    }
    assert ok(await dep.run_mutation("config:remember")) == "gpt-2"
    assert ok(await dep.run_action("config:from_action")) == ["gpt-2", "gpt-2"]
    assert read_variables(dep.store) == {"MODEL": "gpt-2", "OTHER": "x"}
    assert await set_var(dep, "MODEL", None) == "removed"
    assert await set_var(dep, "MODEL", None) == "absent"
    assert ok(dep.run_query("config:model")) is None


async def test_missing_variable_error_says_how_to_set_it(deployment: DeploymentFactory) -> None:
    dep = await deployment(FUNCTIONS)
    await set_var(dep, "OTHER", "x")
    message = failure_message(dep.run_query("config:required"))
    assert "No environment variable 'API_KEY'" in message
    assert "pyconvex env set API_KEY" in message
    assert "OTHER" in message


async def test_a_query_that_read_a_variable_is_invalidated_by_its_change(
    deployment: DeploymentFactory,
) -> None:
    dep = await deployment(FUNCTIONS)
    log = CommitLog(dep)
    # Before the table exists: its creation must still invalidate the reader.
    before = dep.run_query("config:model")
    first = await dep.run_mutation(SET_PATH, {"name": "MODEL", "value": "a"}, allow_internal=True)
    assert before.read_set is not None
    assert before.read_set.intersects(log.for_ts(first.ts).writes)  # type: ignore[arg-type]
    after = dep.run_query("config:model")
    second = await dep.run_mutation(SET_PATH, {"name": "OTHER", "value": "b"}, allow_internal=True)
    assert after.read_set is not None
    assert after.read_set.intersects(log.for_ts(second.ts).writes)  # type: ignore[arg-type]
    # A query that never read the environment is not touched by it.
    other = await dep.run_mutation("config:remember")
    assert not before.read_set.intersects(log.for_ts(other.ts).writes)  # type: ignore[arg-type]


async def test_variables_are_durable(deployment: DeploymentFactory, tmp_path: Path) -> None:
    dep = await deployment(FUNCTIONS, persistent=True)
    await set_var(dep, "MODEL", "kept")
    await dep.close()
    again = await deployment(persistent=True)
    assert ok(again.run_query("config:model")) == "kept"
    assert ENV_TABLE in again.store.tables and again.store.tables[ENV_TABLE].is_system


async def test_clients_cannot_set_variables(deployment: DeploymentFactory) -> None:
    dep = await deployment(FUNCTIONS)
    result = await dep.run_mutation(SET_PATH, {"name": "MODEL", "value": "x"})
    assert "Could not find public function" in failure_message(result)
    bad = await dep.run_mutation(SET_PATH, {"name": "1X", "value": "x"}, allow_internal=True)
    assert "starting with a letter" in failure_message(bad)


def test_env_outside_a_function_says_where_to_read_it() -> None:
    with pytest.raises(PyconvexError, match="only while a query, mutation or action runs"):
        env.get("X")
    assert "MODEL" not in repr(env)

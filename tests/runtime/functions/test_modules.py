"""Loading convex/ into module:function paths: nested modules, no clash with installed
packages (the PyPI ``convex`` client included), private and internal functions, errors,
log lines, ConvexError vs server errors, argument and return validation."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest
from support.deployment import failure_message, make_project, ok

from pyconvex.runtime.functions.deployment import function_ref_path
from pyconvex.runtime.functions.loader import ModuleLoadError, load_functions, module_paths, unload

MESSAGES = """
import logging

from pyconvex import ConvexError, Int64, internal_mutation, internal_query, mutation, query, v

from ._helpers import shout

log = logging.getLogger(__name__)


@query
async def hello(ctx, name: str) -> str:
    print("saying hello to", name)
    log.info("info line")
    log.warning("careful")
    return shout(name)


@query
async def _secret(ctx):
    return "hidden"


@internal_query
async def internal_only(ctx):
    return "internal"


@internal_mutation
async def internal_write(ctx):
    return await ctx.db.insert("things", {"x": 1.0})


@mutation
async def fail_with_data(ctx):
    raise ConvexError({"code": "NOPE", "n": Int64(3)})


@mutation
async def fail_with_string(ctx):
    raise ConvexError("plain message")


@query
async def crash(ctx):
    raise ValueError("secret internals")


@query(args={"count": v.int64(), "label": v.optional(v.string())})
async def typed(ctx, count, label=None):
    return {"count": count, "label": label}


@query
async def annotated(ctx, n: int, x: float, flag: bool = False, tags: list[str] | None = None):
    return {"n_type": type(n).__name__, "x_type": type(x).__name__, "flag": flag, "tags": tags}


@query(returns=v.string())
async def bad_return(ctx):
    return 5.0


@query
async def lying_annotation(ctx) -> str:
    return 5.0


@query
async def no_args(ctx):
    return "ok"
"""

HELPERS = """
def shout(name):
    return f"HELLO {name.upper()}"
"""

USERS = """
from pyconvex import mutation, query


@query
async def count(ctx):
    return len(await ctx.db.query("users").collect())


@mutation
async def ban(ctx, name: str):
    return await ctx.db.insert("users", {"name": name, "banned": True})
"""

CLASHES = """
import json

import convex as pypi_convex

from pyconvex import query


@query
async def which(ctx):
    return {"convex": pypi_convex.__file__, "json": json.__file__,
            "client": hasattr(pypi_convex, "ConvexClient")}
"""

REEXPORT = """
from pyconvex import query

from .messages import hello  # registered in messages, not here


@query
async def own(ctx):
    return "own"
"""

ACTIONS = """
from pyconvex import action


@action
async def call_internal(ctx):
    q = await ctx.run_query("messages:internal_only", {})
    m = await ctx.run_mutation("messages:internal_write", {})
    return {"q": q, "m_is_id": isinstance(m, str)}


@action
async def call_failing(ctx):
    await ctx.run_mutation("messages:fail_with_data", {})
"""

GENERATED = """
from pyconvex import query


@query
async def generated(ctx):
    return "should not be exported"
"""

FILES = {
    "messages.py": MESSAGES,
    "_helpers.py": HELPERS,
    "admin/users.py": USERS,
    "json.py": CLASHES,
    "reexport.py": REEXPORT,
    "actions.py": ACTIONS,
    "_generated/api.py": GENERATED,
}


@pytest.fixture
async def dep(deployment: Any) -> Any:
    return await deployment(FILES)


# -- paths ----------------------------------------------------------------------------------------
async def test_function_paths(dep: Any) -> None:
    assert set(dep.functions) == {
        "messages:hello",
        "messages:internal_only",
        "messages:internal_write",
        "messages:fail_with_data",
        "messages:fail_with_string",
        "messages:crash",
        "messages:typed",
        "messages:annotated",
        "messages:bad_return",
        "messages:lying_annotation",
        "messages:no_args",
        "admin/users:count",
        "admin/users:ban",
        "json:which",
        "reexport:own",
        "actions:call_internal",
        "actions:call_failing",
    }
    assert dep.function_kind("admin/users:ban") == "mutation"
    assert dep.function_kind("messages:hello") == "query"
    assert dep.function_kind("actions:call_internal") == "action"
    assert dep.function_kind("nope:nope") is None


async def test_nested_module_paths_run(dep: Any) -> None:
    ok(await dep.run_mutation("admin/users:ban", {"name": "eve"}))
    assert ok(dep.run_query("admin/users:count", {})) == 1
    assert ok(dep.run_query("admin/users.js:count", {})) == 1  # the PyPI client's spelling


def test_module_paths_skip_private_and_generated(tmp_path: Path) -> None:
    root = make_project(tmp_path, FILES)
    assert module_paths(root) == ["actions", "admin/users", "json", "messages", "reexport"]


async def test_user_convex_dir_does_not_clash_with_installed_packages(dep: Any) -> None:
    import convex

    r = ok(dep.run_query("json:which", {}))
    assert r["convex"] == convex.__file__ and "site-packages" in r["convex"]
    assert r["client"] is True
    import json

    assert r["json"] == json.__file__  # a user json.py does not shadow the stdlib
    assert sys.modules["convex"] is convex
    assert not any(name == "messages" or name.startswith("convex.messages") for name in sys.modules)


def test_each_load_gets_a_fresh_package(tmp_path: Path) -> None:
    root = make_project(tmp_path, {"messages.py": MESSAGES, "_helpers.py": HELPERS})
    first = load_functions(root)
    (root / "messages.py").write_text(MESSAGES.replace("HELLO", "HI") + "\n")
    (root / "_helpers.py").write_text(HELPERS.replace("HELLO", "HI"))
    second = load_functions(root)
    assert first.package != second.package
    assert (
        second.functions["messages:hello"].handler is not first.functions["messages:hello"].handler
    )
    unload(first)
    assert first.package not in sys.modules and second.package in sys.modules
    unload(second)


# -- visibility -----------------------------------------------------------------------------------
async def test_private_names_are_not_exported(dep: Any) -> None:
    msg = failure_message(dep.run_query("messages:_secret", {}))
    assert "Could not find" in msg
    msg = failure_message(dep.run_query("_generated/api:generated", {}))
    assert "Could not find" in msg or "_generated" in msg


async def test_internal_functions_need_allow_internal(dep: Any) -> None:
    msg = failure_message(dep.run_query("messages:internal_only", {}))
    assert "Could not find public function for 'messages:internal_only'" in msg
    assert "internal" in msg
    assert ok(dep.run_query("messages:internal_only", {}, allow_internal=True)) == "internal"
    msg = failure_message(await dep.run_mutation("messages:internal_write", {}))
    assert "internal" in msg
    ok(await dep.run_mutation("messages:internal_write", {}, allow_internal=True))


async def test_actions_may_call_internal_functions(dep: Any) -> None:
    assert ok(await dep.run_action("actions:call_internal", {})) == {
        "q": "internal",
        "m_is_id": True,
    }
    r = await dep.run_action("actions:call_failing", {})
    assert r.failure.is_convex_error and r.failure.data["code"] == "NOPE"


async def test_unknown_function_suggests_close_names(dep: Any) -> None:
    msg = failure_message(dep.run_query("messages:helo", {}))
    assert "Could not find public function for 'messages:helo'" in msg
    assert "'messages:hello'" in msg
    assert "messages:internal_only" not in msg  # internal names are not leaked to clients


async def test_wrong_kind(dep: Any) -> None:
    msg = failure_message(await dep.run_mutation("messages:hello", {"name": "x"}))
    assert "messages:hello" in msg and "Mutation" in msg and "Query" in msg
    assert "Query" in failure_message(dep.run_query("admin/users:ban", {"name": "x"}))


def test_function_references() -> None:
    class Ref:
        path = "messages:hello"

    assert function_ref_path("messages:hello") == "messages:hello"
    assert function_ref_path(Ref()) == "messages:hello"
    with pytest.raises(Exception, match="function reference"):
        function_ref_path(42)


# -- results, errors and logs ---------------------------------------------------------------------
async def test_log_lines(dep: Any) -> None:
    r = dep.run_query("messages:hello", {"name": "ada"})
    assert ok(r) == "HELLO ADA"
    assert r.log_lines == ["[LOG] saying hello to ada", "[INFO] info line", "[WARN] careful"]


async def test_convex_error_data_reaches_the_caller(dep: Any) -> None:
    f = (await dep.run_mutation("messages:fail_with_data", {})).failure
    assert f.is_convex_error and f.data == {"code": "NOPE", "n": 3}
    # Convex's text: the request line, the data as compact JSON (an int64 as "3n"), the frame.
    assert re.fullmatch(
        r"\[Request ID: [0-9a-f]{16}\] Server Error\n"
        r'Uncaught ConvexError: \{"code":"NOPE","n":"3n"\}\n'
        r"    at fail_with_data \(convex/messages\.py:\d+\)\n",
        f.message,
    ), f.message
    f = (await dep.run_mutation("messages:fail_with_string", {})).failure
    assert f.is_convex_error and f.data == "plain message"
    assert f.error.startswith("Uncaught ConvexError: plain message\n")


async def test_other_exceptions_are_server_errors(dep: Any) -> None:
    f = dep.run_query("messages:crash", {}).failure
    assert not f.is_convex_error and f.data is None
    assert re.fullmatch(
        r"\[Request ID: ([0-9a-f]{16})\] Server Error\n"
        r"Uncaught ValueError: secret internals\n"
        r"    at crash \(convex/messages\.py:\d+\)\n",
        f.message,
    ), f.message
    # The same request id in the log history (pyconvex logs, the dev console).
    assert f.request_id and f.message.startswith(f"[Request ID: {f.request_id}]")
    assert dep.log_history.recent(1)[0].request_id == f.request_id
    # The traceback is kept for the developer (dev console, pyconvex logs), never sent: the
    # user's frames only, and all frames for --verbose.
    assert "Traceback" not in f.message
    assert "messages.py" in f.traceback and "ValueError: secret internals" in f.traceback
    assert "pyconvex/runtime" not in f.traceback
    assert "pyconvex/runtime/functions/deployment.py" in f.full_traceback
    entry = dep.log_history.recent(1)[0]
    assert (entry.traceback, entry.full_traceback) == (f.traceback, f.full_traceback)


async def test_calls_of_missing_functions_are_logged(dep: Any) -> None:
    f = dep.run_query("messages:nope", {}).failure
    assert "Could not find public function" in f.message
    entry = dep.log_history.recent(1)[0]
    assert (entry.path, entry.error) == ("messages:nope", f.message)


# -- arguments and returns ------------------------------------------------------------------------
async def test_args_validated_by_validators(dep: Any) -> None:
    from pyconvex import Int64

    assert ok(dep.run_query("messages:typed", {"count": Int64(2)})) == {"count": 2, "label": None}
    f = dep.run_query("messages:typed", {"count": 2.0}).failure
    assert f.message == (
        f"[Request ID: {f.request_id}] Server Error\n"
        "ArgumentValidationError: Value does not match validator.\n"
        "Path: .count\n"
        "Value: 2.0\n"
        "Validator: v.int64()\n"
        "messages:typed: Value at .count must be v.int64(), got float64 2.0"
        + f.message.split("got float64 2.0", 1)[1]  # the number hint, if any
    )
    assert f.message.endswith("\n") and f.traceback is None
    f = dep.run_query("messages:typed", {"count": Int64(1), "extra": 1.0}).failure
    assert f.error.startswith(
        "ArgumentValidationError: Object contains extra field `extra` that is not in the "
        "validator.\n\nObject: {count: 1, extra: 1.0}\n"
        "Validator: v.object({count: v.int64(), label: v.optional(v.string())})\n"
        'messages:typed: Object has an unexpected field "extra" (allowed fields: "count", "label")'
    )
    f = dep.run_query("messages:typed", {}).failure
    assert f.error.startswith(
        "ArgumentValidationError: Object is missing the required field `count`. Consider "
        "wrapping the field validator in `v.optional(...)` if this is expected.\n\nObject: {}\n"
    )
    msg = failure_message(dep.run_query("messages:typed", [1.0]))  # type: ignore[arg-type]
    assert (
        "Expected to receive an object as the function's argument. Instead received: [1.0]" in msg
    )
    assert "takes an object of arguments" in msg


async def test_args_derived_from_annotations(dep: Any) -> None:
    r = ok(dep.run_query("messages:annotated", {"n": 3.0, "x": 2.0}))
    assert r == {"n_type": "int", "x_type": "float", "flag": False, "tags": None}
    r = ok(dep.run_query("messages:annotated", {"n": 1.0, "x": 1.5, "flag": True, "tags": ["a"]}))
    assert r["flag"] is True and r["tags"] == ["a"]
    assert ".n" in failure_message(dep.run_query("messages:annotated", {"n": 1.5, "x": 1.0}))
    assert "missing the required field `x`" in failure_message(
        dep.run_query("messages:annotated", {"n": 1.0})
    )
    assert "ArgumentValidationError" in failure_message(dep.run_query("messages:hello", {}))


async def test_no_args_function_accepts_empty_args(dep: Any) -> None:
    assert ok(dep.run_query("messages:no_args", {})) == "ok"
    assert ok(dep.run_query("messages:no_args", None)) == "ok"


async def test_return_validation(dep: Any) -> None:
    f = dep.run_query("messages:bad_return", {}).failure
    assert f.error == (
        "ReturnsValidationError: Value does not match validator.\n\nValue: 5.0\n"
        "Validator: v.string()\nmessages:bad_return returned a value that does not match "
        "returns=: Value must be v.string(), got float64 5.0\n"
    )
    assert "ReturnsValidationError" in failure_message(
        dep.run_query("messages:lying_annotation", {})
    )


# -- load errors ----------------------------------------------------------------------------------
def test_import_error_names_the_file(tmp_path: Path) -> None:
    root = make_project(tmp_path, {"broken.py": "import nonexistent_module_xyz\n"})
    with pytest.raises(ModuleLoadError, match=r"convex/broken\.py.*nonexistent_module_xyz"):
        load_functions(root)


def test_schema_module_must_define_a_schema(tmp_path: Path) -> None:
    root = make_project(tmp_path, {"schema.py": "schema = {'tables': {}}\n"})
    with pytest.raises(ModuleLoadError, match="define_schema"):
        load_functions(root)


def test_missing_functions_dir(tmp_path: Path) -> None:
    with pytest.raises(ModuleLoadError, match="does not exist"):
        load_functions(tmp_path / "nowhere")

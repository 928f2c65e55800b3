"""``generate``: golden output for the example project, determinism, writing only what changed,
and the orders of loading that must work (api.py missing, stale, schema gone)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from support.codegen import GOLDEN, write_project

from pyconvex import query
from pyconvex.codegen import (
    CodegenError,
    generate,
    generate_api_modules,
    generate_schema_modules,
)
from pyconvex.codegen.api_module import api_plan
from pyconvex.codegen.model import source
from pyconvex.codegen.names import Names
from pyconvex.codegen.python_types import TypeBuilder
from pyconvex.runtime.functions.loader import ModuleLoadError, load_functions, unload
from pyconvex.values.scalar_validators import IntValidator
from pyconvex.values.validators import v

FILES = (
    "__init__.py",
    "data_model.py",
    "server.py",
    "dataModel.d.ts",
    "api.py",
    "api.js",
    "api.d.ts",
)
UPDATE = os.environ.get("PYCONVEX_UPDATE_GOLDENS") == "1"


def _check_golden(generated: Path, golden: Path, names: tuple[str, ...]) -> None:
    for name in names:
        text = (generated / name).read_text()
        if UPDATE:
            golden.mkdir(parents=True, exist_ok=True)
            (golden / name).write_text(text)
        expected = (golden / name).read_text()
        assert text == expected, (
            f"{name} differs from {golden / name}; if the change is intended, rerun with "
            "PYCONVEX_UPDATE_GOLDENS=1 and review the diff"
        )


def test_example_project_matches_the_golden_files(chat_project: Path) -> None:
    functions = chat_project / "convex"
    changed = generate(functions)
    assert changed == [functions / "_generated" / name for name in FILES]
    _check_golden(functions / "_generated", GOLDEN / "chat", FILES)


def test_a_project_without_schema_is_schemaless(tmp_path: Path) -> None:
    functions = write_project(
        tmp_path,
        {
            "notes.py": """
            from pyconvex import mutation

            @mutation
            async def add(ctx, body: str):
                return await ctx.db.insert("notes", {"body": body})
            """
        },
    )
    generate(functions)
    _check_golden(functions / "_generated", GOLDEN / "schemaless", FILES)


def test_generating_twice_changes_nothing_and_touches_nothing(chat_project: Path) -> None:
    functions = chat_project / "convex"
    generate(functions)
    before = {p.name: p.stat().st_mtime_ns for p in (functions / "_generated").iterdir()}
    assert generate(functions) == []
    after = {p.name: p.stat().st_mtime_ns for p in (functions / "_generated").iterdir()}
    assert after == before


def test_only_files_whose_content_changed_are_written(chat_project: Path) -> None:
    functions = chat_project / "convex"
    generate(functions)
    data_model = (functions / "_generated" / "data_model.py").stat().st_mtime_ns
    with (functions / "channels.py").open("a") as f:
        f.write("\n\n@query\nasync def total(ctx: QueryCtx) -> int:\n    return 0\n")
    changed = generate(functions)
    assert changed == [functions / "_generated" / n for n in ("api.py", "api.d.ts")]
    api = (functions / "_generated" / "api.py").read_text()
    assert "ChannelsTotalRef: TypeAlias = FunctionReference[" in api
    assert "    total: ChannelsTotalRef\n" in api
    assert (functions / "_generated" / "data_model.py").stat().st_mtime_ns == data_model
    # A schema change rewrites data_model.py and dataModel.d.ts, and api.d.ts where documents
    # are spelled out (api.py names them: ChannelsDoc).
    schema = functions / "schema.py"
    schema.write_text(schema.read_text().replace('"name": v.string()', '"title": v.string()'))
    changed = generate(functions)
    assert {p.name for p in changed} == {"data_model.py", "dataModel.d.ts", "api.d.ts"}
    assert '{ title: string; _id: Id<"channels">' in (changed[-1]).read_text()


def test_output_does_not_depend_on_the_order_files_were_written(tmp_path: Path) -> None:
    sources = {
        "b.py": "from pyconvex import query\n\n@query\nasync def two(ctx) -> None: ...\n",
        "a.py": "from pyconvex import query\n\n@query\nasync def one(ctx) -> None: ...\n",
    }
    first = write_project(tmp_path / "x", sources)
    second = write_project(tmp_path / "y", dict(reversed(sources.items())))
    generate(first)
    generate(second)
    for name in FILES:
        assert (first / "_generated" / name).read_bytes() == (
            second / "_generated" / name
        ).read_bytes()


def test_modules_importing_api_load_before_api_py_exists(tmp_path: Path) -> None:
    functions = write_project(
        tmp_path,
        {
            "crons.py": """
            from ._generated.api import internal

            JOB = internal.jobs.cleanup  # evaluated at import time, before codegen ran
            """,
            "jobs.py": """
            from pyconvex import internal_mutation

            @internal_mutation
            async def cleanup(ctx) -> None: ...
            """,
        },
    )
    generate(functions)
    api = (functions / "_generated" / "api.py").read_text()
    assert '"jobs:cleanup": "mutation"' in api


def test_api_py_still_imports_after_a_table_it_names_is_renamed(chat_project: Path) -> None:
    functions = chat_project / "convex"
    generate(functions)
    schema = functions / "schema.py"
    schema.write_text(schema.read_text().replace('"messages":', '"posts":'))
    for module in ("messages.py", "actions.py"):
        (functions / module).unlink()
    # The stale api.py names MessagesDoc, which data_model.py no longer defines.
    generate(functions)
    data_model = (functions / "_generated" / "data_model.py").read_text()
    assert "class PostsDoc(PostsFields):" in data_model
    assert "MessagesDoc" not in (functions / "_generated" / "api.py").read_text()


def test_the_two_steps_can_run_separately(chat_project: Path) -> None:
    functions = chat_project / "convex"
    written: list[Path] = []

    def on_schema(schema: object) -> None:
        from pyconvex.server.schema import SchemaDefinition

        assert isinstance(schema, SchemaDefinition)
        written.extend(generate_schema_modules(functions, schema))

    loaded = load_functions(functions, on_schema=on_schema)
    try:
        assert [p.name for p in written] == [
            "__init__.py",
            "data_model.py",
            "server.py",
            "dataModel.d.ts",
            "api.py",
        ]
        assert [p.name for p in generate_api_modules(functions, loaded)] == [
            "api.py",
            "api.js",
            "api.d.ts",
        ]
    finally:
        unload(loaded)
    assert generate(functions) == []


def test_a_broken_schema_names_the_file_and_line(tmp_path: Path) -> None:
    functions = write_project(
        tmp_path,
        {
            "schema.py": """
            from pyconvex import define_schema, define_table, v

            schema = define_schema({"t": define_table({"a": v.strin()})})
            """
        },
    )
    with pytest.raises(ModuleLoadError) as info:
        generate(functions)
    assert info.value.path is not None and info.value.path.name == "schema.py"
    assert info.value.line == 3
    assert "strin" in str(info.value)
    assert not (functions / "_generated" / "server.py").exists()


def test_a_function_clashing_with_a_module_is_refused() -> None:
    # Python cannot import admin.py next to admin/, but api_plan is also fed by the dev loop.
    async def users(ctx: object) -> None: ...

    async def ban(ctx: object) -> None: ...

    clashing = [query(users), query(ban)]
    clashing[0].path, clashing[1].path = "admin:users", "admin/users:ban"
    with pytest.raises(CodegenError, match=r"admin:users.*convex/admin/users\.py"):
        api_plan(clashing, {})


def test_an_int_a_caller_receives_is_typed_float() -> None:
    """A handler gets an ``int`` parameter as an int, but what a function returns crosses the
    wire as a float64 and arrives as a float (from a client, ConvexTest or ctx.run_query)."""
    types = TypeBuilder(Names())
    counts = v.object({"n": IntValidator(), "label": v.string()})
    assert source(types.type_of(counts, "Args")) == "Args"
    assert source(types.type_of(v.array(counts), "Returns", received=True)) == "list[ReturnsItem]"
    assert source(types.type_of(v.object({"s": v.string()}), "Same", received=True)) == "Same"
    fields = {d.name: [(f.key, source(f.type)) for f in d.fields] for d in types.defs}
    assert fields["Args"] == [("n", "int"), ("label", "str")]
    assert fields["ReturnsItem"] == [("n", "float"), ("label", "str")]
    assert source(types.type_of(IntValidator(), "X", received=True)) == "float"

"""The deployment's side of ``pyconvex deploy``, in process: a plan shows the changes and
changes nothing; a deploy switches in one step (subscriptions re-run on the new code), is kept
on disk, and a refused or stale one changes nothing."""

from __future__ import annotations

import io
import textwrap
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from pyconvex.dev.bundle import Bundle, code_hash
from pyconvex.dev.code_store import CodeStore
from pyconvex.dev.deployer import Deployer
from pyconvex.dev.loop import DevLoop
from pyconvex.dev.production import no_codegen
from pyconvex.project import ProjectSettings
from pyconvex.runtime.net.admin_routes import DeployRefused
from pyconvex.runtime.net.subscriptions import SubscriptionManager

SCHEMA = """
from pyconvex import define_schema, define_table, v

schema = define_schema({"notes": define_table({"body": v.string()})})
"""

NOTES = """
from pyconvex import mutation, query, v

from ._words import word


@query(args={})
async def hello(ctx):
    return word()


@query(args={})
async def count(ctx):
    return len(await ctx.db.query("notes").collect())


@mutation(args={"body": v.any()})
async def add(ctx, body):
    return await ctx.db.insert("notes", {"body": body})


@query(args={})
async def legacy(ctx):
    return "old"
"""

WORDS = 'def word():\n    return "v1"\n'

NEW_SCHEMA = """
from pyconvex import define_schema, define_table, v

schema = define_schema({
    "notes": define_table({"body": v.string()}).index("by_body", ["body"]),
    "tags": define_table({"name": v.string()}),
})
"""

NEW_NOTES = NOTES.replace("async def legacy", "async def first").replace(
    'return "old"',
    'return (await ctx.db.query("notes").with_index("by_body").first() or {}).get("body")',
)


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for rel, source in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source).lstrip("\n"))
    return root


def bundle_of(tmp_path: Path, name: str, files: dict[str, str]) -> dict[str, Any]:
    return Bundle.from_dir(write_tree(tmp_path / name / "convex", files)).to_json()


class Watcher:
    def __init__(self) -> None:
        self.updates: list[list[tuple[int, Any]]] = []

    def subscriptions_updated(self, ts: int, changed: list[tuple[int, Any]]) -> None:
        self.updates.append(changed)


class Served:
    def __init__(self, loop: DevLoop, deployer: Deployer, out: io.StringIO) -> None:
        self.loop = loop
        self.deployer = deployer
        self._out = out

    @property
    def out(self) -> str:
        return self._out.getvalue()

    def query(self, path: str) -> Any:
        assert self.loop.deployment is not None
        result = self.loop.deployment.run_query(path, {})
        return result.value if result.failure is None else result.failure.message


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    loops: list[DevLoop] = []

    async def start(files: dict[str, str] | None = None, *, persist: bool = True) -> Served:
        functions = write_tree(
            tmp_path / "server" / "convex",
            files or {"schema.py": SCHEMA, "notes.py": NOTES, "_words.py": WORDS},
        )
        data = tmp_path / "server" / "data"
        settings = ProjectSettings(tmp_path / "server", functions, data)
        out = io.StringIO()
        console = Console(file=out, width=200)
        loop = DevLoop(settings, out=console, err=console, codegen=no_codegen(), name="serve")
        loops.append(loop)
        deployment = await loop.open(data)
        loop.announce_startup()
        loop.manager = SubscriptionManager(deployment)
        return Served(loop, Deployer(loop, CodeStore(data), persist=persist), out)

    yield start
    for loop in loops:
        if loop.manager is not None:
            loop.manager.close()
        await loop.close()


def new_code(tmp_path: Path, **changes: str) -> dict[str, Any]:
    files = {"schema.py": NEW_SCHEMA, "notes.py": NEW_NOTES, "_words.py": WORDS, **changes}
    return bundle_of(tmp_path, "client", files)


async def test_plan_shows_every_change_and_changes_nothing(served: Any, tmp_path: Path) -> None:
    s = await served()
    assert s.loop.deployment is not None
    for body in ("a", "b", "c"):
        await s.loop.deployment.run_mutation("notes:add", {"body": body})
    serving = s.loop.serving
    plan = await s.deployer.plan({"bundle": new_code(tmp_path)})
    assert plan["base"] == code_hash(serving) and plan["code"] != plan["base"]
    assert plan["tables"] == {"added": ["tags"], "removed": []}
    assert plan["indexes"]["added"] == [
        {"table": "notes", "name": "by_body", "fields": ["body"], "documents": 3},
    ]
    assert plan["functions"] == {
        "added": ["notes:first"],
        "changed": ["notes:add", "notes:count", "notes:hello"],  # their module changed
        "removed": ["notes:legacy"],
        "unchanged": 0,
    }
    # notes keeps its validator: its documents need no check (the new table has none).
    assert plan["validatorsChanged"] == ["tags"]
    assert plan["violations"] == [] and plan["checked"] == 0
    # Nothing changed: the same code serves, no index was built, nothing was committed.
    assert s.loop.serving is serving
    assert s.query("notes:legacy") == "old"
    assert "by_body" not in s.loop.deployment.store.tables["notes"].indexes
    assert CodeStore(tmp_path / "server" / "data").current() is None


async def test_deploy_switches_and_subscriptions_rerun_on_the_new_code(
    served: Any, tmp_path: Path
) -> None:
    s = await served()
    dep = s.loop.deployment
    manager = s.loop.manager
    assert dep is not None and manager is not None
    await dep.run_mutation("notes:add", {"body": "x"})
    watcher = Watcher()
    sub = manager.subscribe(watcher, 1, "notes:hello", [{}])
    assert '"v1"' in sub.body
    bundle = new_code(tmp_path, **{"_words.py": 'def word():\n    return "v2"\n'})
    plan = await s.deployer.plan({"bundle": bundle})
    outcome = await s.deployer.apply({"bundle": bundle, "base": plan["base"]})
    assert outcome["status"] == "deployed" and outcome["code"] == plan["code"]
    assert outcome["switchMs"] >= 0
    # The subscription was re-run in the switch itself; the new index was built before it.
    assert '"v2"' in sub.body
    assert [[query_id for query_id, _ in changed] for changed in watcher.updates] == [[1]]
    assert s.query("notes:first") == "x"
    assert "Could not find public function for 'notes:legacy'" in s.query("notes:legacy")
    assert code_hash(s.loop.serving) == plan["code"]
    current = CodeStore(tmp_path / "server" / "data").current()
    assert current is not None and current[0] == plan["code"]
    assert "serve: deployed " + plan["code"][:12] in s.out
    # The same code again is no change.
    again = await s.deployer.apply({"bundle": bundle, "base": plan["code"]})
    assert again["status"] == "unchanged"


async def test_incompatible_schema_is_refused_and_changes_nothing(
    served: Any, tmp_path: Path
) -> None:
    s = await served(
        {
            "schema.py": SCHEMA.replace("v.string()", "v.any()"),
            "notes.py": NOTES,
            "_words.py": WORDS,
        }
    )
    dep = s.loop.deployment
    assert dep is not None
    bad_id = (await dep.run_mutation("notes:add", {"body": 42.0})).value
    serving = s.loop.serving
    bundle = new_code(tmp_path)
    plan = await s.deployer.plan({"bundle": bundle})
    [violation] = plan["violations"]
    assert violation["table"] == "notes" and violation["docId"] == bad_id
    assert violation["field"] == ".body"
    assert violation["expected"] == "v.string()" and "42" in violation["found"]
    assert f'Document with ID "{bad_id}" in table "notes" does not match' in violation["message"]
    outcome = await s.deployer.apply({"bundle": bundle, "base": plan["base"]})
    assert outcome["status"] == "refused" and outcome["violations"] == [violation]
    assert s.loop.serving is serving
    assert s.query("notes:legacy") == "old"
    assert "by_body" not in dep.store.tables["notes"].indexes
    assert "tags" not in dep.store.tables
    assert CodeStore(tmp_path / "server" / "data").current() is None


async def test_deploy_planned_against_other_code_is_refused(served: Any, tmp_path: Path) -> None:
    s = await served()
    first = new_code(tmp_path)
    plan = await s.deployer.plan({"bundle": first})
    other = bundle_of(tmp_path, "other", {"notes.py": NOTES, "_words.py": WORDS})
    assert (await s.deployer.apply({"bundle": other}))["status"] == "deployed"
    with pytest.raises(DeployRefused) as refused:
        await s.deployer.apply({"bundle": first, "base": plan["base"]})
    assert refused.value.status == 409 and refused.value.code == "DeploymentChanged"
    assert s.query("notes:legacy") == "old"  # still the other code
    assert code_hash(s.loop.serving) == Bundle.from_json(other).hash


async def test_code_that_does_not_import_is_refused_naming_the_file(
    served: Any, tmp_path: Path
) -> None:
    s = await served()
    serving = s.loop.serving
    broken = new_code(tmp_path, **{"_words.py": "import no_such_module_here\n"})
    with pytest.raises(DeployRefused) as refused:
        await s.deployer.plan({"bundle": broken})
    assert refused.value.code == "ModuleLoadFailed"
    assert "convex/_words.py" in refused.value.message
    assert "no_such_module_here" in refused.value.message
    assert str(tmp_path) not in refused.value.message  # the staged copy's path is not shown
    assert s.loop.serving is serving and s.query("notes:hello") == "v1"


@pytest.mark.parametrize(
    ("bundle", "says"),
    [
        ({"name": "convex", "files": {"../evil.py": ""}}, "not a module path"),
        ({"name": "convex", "files": {"/etc/x.py": ""}}, "not a module path"),
        ({"name": "convex", "files": {"notes.txt": ""}}, "not the path of a .py file"),
        ({"name": "../x", "files": {}}, "not a directory name"),
        ({"name": "convex", "files": {"a.py": 3}}, "must be text"),
        ([], "must be an object"),
    ],
)
async def test_a_bundle_outside_a_functions_directory_is_refused(
    served: Any, bundle: Any, says: str
) -> None:
    s = await served()
    with pytest.raises(DeployRefused) as refused:
        await s.deployer.plan({"bundle": bundle})
    assert refused.value.status == 400 and says in refused.value.message


def test_bundle_round_trip_and_hash_of_the_loaded_code(tmp_path: Path) -> None:
    from pyconvex.runtime.functions.loader import load_functions, unload

    root = write_tree(
        tmp_path / "a" / "convex",
        {"notes.py": NOTES, "_words.py": WORDS, "sub/__init__.py": "", "sub/x.py": "X = 1\n"},
    )
    (root / "latin.py").write_bytes(b"# -*- coding: latin-1 -*-\nNAME = '\xe9'\n")
    (root / "notes.txt").write_text("not shipped")
    bundle = Bundle.from_dir(root)
    assert sorted(bundle.files) == [
        "_words.py",
        "latin.py",
        "notes.py",
        "sub/__init__.py",
        "sub/x.py",
    ]
    same = Bundle.from_json(bundle.to_json())
    assert same == bundle and same.hash == bundle.hash
    copy = same.write_to(tmp_path / "b")
    loaded = load_functions(copy)
    try:
        assert code_hash(loaded) == bundle.hash
    finally:
        unload(loaded)


async def test_deploy_to_dev_serves_until_the_next_save(served: Any, tmp_path: Path) -> None:
    s = await served(persist=False)
    bundle = new_code(tmp_path, **{"_words.py": 'def word():\n    return "deployed"\n'})
    assert (await s.deployer.apply({"bundle": bundle}))["status"] == "deployed"
    assert s.query("notes:hello") == "deployed"
    data = tmp_path / "server" / "data"
    assert CodeStore(data).current() is None  # dev keeps its own files as its code
    # A save in the dev project pushes its files again.
    words = write_tree(
        tmp_path / "server" / "convex", {"_words.py": 'def word():\n    return "saved"\n'}
    )
    s.loop.notice({words / "_words.py"})
    assert await s.loop.step() is True
    assert s.query("notes:hello") == "saved"
    assert s.query("notes:legacy") == "old"

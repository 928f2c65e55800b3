"""``api.js`` / ``api.d.ts`` / ``dataModel.d.ts``: TypeScript types from validators, the npm
client resolving generated references to function paths, and tsc checking a frontend against
the generated data model."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from support.npm import node_with_client_deps

from pyconvex.codegen import generate
from pyconvex.codegen.typescript import ts_type
from pyconvex.values import Int64
from pyconvex.values.validators import IntValidator, v

NODE_MODULES = Path(__file__).parent.parent / "clients" / "node_modules"


@pytest.mark.parametrize(
    ("validator", "expected"),
    [
        (v.string(), "string"),
        (v.float64(), "number"),
        (IntValidator(), "number"),
        (v.int64(), "bigint"),
        (v.boolean(), "boolean"),
        (v.bytes(), "ArrayBuffer"),
        (v.null(), "null"),
        (v.any(), "any"),
        (v.id("messages"), 'Id<"messages">'),
        (v.literal("draft"), '"draft"'),
        (v.literal(3), "3"),
        (v.literal(2.5), "2.5"),
        (v.literal(Int64(7)), "7n"),
        (v.literal(True), "true"),
        (v.array(v.union(v.string(), v.null())), "Array<string | null>"),
        (v.record(v.string(), v.float64()), "Record<string, number>"),
        (v.object({}), "{}"),
        (
            v.object({"my-field": v.optional(v.string()), "n": v.int64()}),
            '{ "my-field"?: string; n: bigint }',
        ),
    ],
)
def test_validators_become_typescript_types(validator: object, expected: str) -> None:
    assert ts_type(validator) == expected  # type: ignore[arg-type]


def test_the_npm_client_resolves_generated_references(chat_project: Path) -> None:
    node = node_with_client_deps("the generated api.js check")
    generate(chat_project / "convex")
    (chat_project / "package.json").write_text('{"type": "module"}\n')
    (chat_project / "node_modules").symlink_to(NODE_MODULES, target_is_directory=True)
    (chat_project / "check.js").write_text(
        'import { api, internal } from "./convex/_generated/api.js";\n'
        'import { getFunctionName } from "convex/server";\n'
        "console.log(JSON.stringify({\n"
        "  send: getFunctionName(api.messages.send),\n"
        "  record: getFunctionName(internal.admin.audit.record),\n"
        "}));\n"
    )
    done = subprocess.run(
        [node, "check.js"], cwd=chat_project, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"send": "messages:send", "record": "admin/audit:record"}


FRONTEND = """
import type { DocumentByName, FunctionReturnType } from "convex/server";
import { api } from "./convex/_generated/api";
import type { DataModel, Doc, Id, TableNames } from "./convex/_generated/dataModel";

export function line(message: Doc<"messages">): string {
  const edited: number | undefined = message.edited_at;
  return `${message.author}: ${message.body} (${message._id}, ${edited ?? message._creationTime})`;
}
export function inChannel(message: Doc<"messages">, channel: Id<"channels">): boolean {
  return message.channel === channel;
}
export const table: TableNames = "channels";
export type Message = DocumentByName<DataModel, "messages">;
export type Found = FunctionReturnType<typeof api.channels.find>;
export function name(found: Found): string | undefined {
  return found?.name;
}
"""

TSCONFIG = {
    "compilerOptions": {
        "strict": True,
        "noEmit": True,
        "target": "es2022",
        "module": "esnext",
        "moduleResolution": "bundler",
        "skipLibCheck": True,
    },
    "files": ["frontend.ts"],
}


def _tsc(project: Path, source: str) -> subprocess.CompletedProcess[str]:
    (project / "frontend.ts").write_text(source)
    return subprocess.run(
        [_node(), str(NODE_MODULES / "typescript" / "bin" / "tsc"), "-p", "."],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _node() -> str:
    return str(node_with_client_deps("the tsc check of the generated .d.ts files"))


@pytest.mark.parametrize(
    ("slip", "error"),
    [
        ('Doc<"messages">): string {', 'Doc<"mesages">): string {'),
        ("message.body}", "message.bdy}"),
        ('channel: Id<"channels">): boolean', 'channel: Id<"users">): boolean'),
    ],
)
def test_tsc_checks_frontends_against_the_data_model(
    chat_project: Path, slip: str, error: str
) -> None:
    _node()
    generate(chat_project / "convex")
    (chat_project / "tsconfig.json").write_text(json.dumps(TSCONFIG))
    (chat_project / "node_modules").symlink_to(NODE_MODULES, target_is_directory=True)
    done = _tsc(chat_project, FRONTEND)
    assert done.returncode == 0, done.stdout + done.stderr
    assert slip in FRONTEND
    wrong = _tsc(chat_project, FRONTEND.replace(slip, error, 1))
    assert wrong.returncode != 0, f"tsc accepted {error!r}"
    assert "frontend.ts" in wrong.stdout


def test_tsc_accepts_the_schemaless_data_model(tmp_path: Path) -> None:
    functions = tmp_path / "convex"
    functions.mkdir()
    (functions / "notes.py").write_text(
        "from pyconvex import query\n\n@query\nasync def f(ctx): ...\n"
    )
    generate(functions)
    (tmp_path / "tsconfig.json").write_text(json.dumps(TSCONFIG))
    (tmp_path / "node_modules").symlink_to(NODE_MODULES, target_is_directory=True)
    source = (
        'import type { Doc, Id } from "./convex/_generated/dataModel";\n'
        "export const note: Doc = { anything: 1 };\n"
        'export const id: Id<"notes"> | null = null;\n'
    )
    done = _tsc(tmp_path, source)
    assert done.returncode == 0, done.stdout + done.stderr

"""``api.js`` / ``api.d.ts``: TypeScript types from validators, and the npm client resolving
generated references to function paths."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

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
    node = shutil.which("node")
    if node is None or not (NODE_MODULES / "convex" / "package.json").exists():
        pytest.skip("needs node and the npm convex package in tests/clients/node_modules")
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

"""What a deploy would change, as the deployment computes it and ``pyconvex deploy`` shows it:
tables, indexes and functions added, changed and removed, and the stored documents the new
schema refuses::

    plan = DeployPlan.build(push_result, serving, staged, base=..., code=...)   # deployment
    body = plan.to_json()
    plan = DeployPlan.from_json(body)                                           # the CLI
    for line in plan.lines():
        print(line)

A function counts as changed when its signature (kind, visibility, args, returns) changed, or
the source of its module or of a module it imports did.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pyconvex.runtime.functions.function_path import function_ref_path
from pyconvex.runtime.functions.loader import LoadedFunctions
from pyconvex.runtime.functions.module_sources import changed_names, importers
from pyconvex.runtime.functions.schema_push import PushResult, SchemaViolation, ViolationKind
from pyconvex.runtime.store.schema_state import SchemaState
from pyconvex.server.functions import FunctionDefinition


@dataclass(slots=True)
class IndexChange:
    table: str
    name: str
    fields: list[str] = field(default_factory=list)
    #: Documents the new index is built from before the switch.
    documents: int = 0


@dataclass(slots=True)
class DeployPlan:
    """The changes a deploy makes (module docstring); ``base`` and ``code`` are the hashes of
    the code serving and of the code deployed."""

    base: str = ""
    code: str = ""
    added_tables: list[str] = field(default_factory=list)
    removed_tables: list[str] = field(default_factory=list)
    added_indexes: list[IndexChange] = field(default_factory=list)
    removed_indexes: list[IndexChange] = field(default_factory=list)
    search_changed: list[str] = field(default_factory=list)
    validators_changed: list[str] = field(default_factory=list)
    added_functions: list[str] = field(default_factory=list)
    changed_functions: list[str] = field(default_factory=list)
    removed_functions: list[str] = field(default_factory=list)
    unchanged_functions: int = 0
    #: Other parts of the code whose definitions changed: "crons", "http routes".
    other_changes: list[str] = field(default_factory=list)
    violations: list[SchemaViolation] = field(default_factory=list)
    #: Documents checked against the new schema.
    checked: int = 0

    @classmethod
    def build(
        cls,
        check: PushResult,
        serving: LoadedFunctions | None,
        new: LoadedFunctions,
        *,
        base: str,
        code: str,
        table_sizes: dict[str, int],
    ) -> DeployPlan:
        """The plan from a :func:`~pyconvex.runtime.functions.schema_push.check_push` of
        ``new`` over the code ``serving``."""
        diff = check.diff
        plan = cls(
            base=base,
            code=code,
            added_tables=list(diff.added_tables),
            removed_tables=list(diff.removed_tables),
            added_indexes=[
                IndexChange(t, s.name, list(s.fields), table_sizes.get(t, 0))
                for t, s in diff.added_indexes
            ],
            removed_indexes=[IndexChange(t, name) for t, name in diff.removed_indexes],
            search_changed=list(diff.search_changed),
            validators_changed=list(diff.validators_changed),
            violations=list(check.violations),
            checked=check.checked,
        )
        # A new table's indexes are created with it (empty): shown too.
        state = SchemaState(new.schema)
        for table in diff.added_tables:
            plan.added_indexes += [
                IndexChange(table, s.name, list(s.fields)) for s in state.index_specs(table)
            ]
        plan._diff_functions(serving, new)
        return plan

    def _diff_functions(self, serving: LoadedFunctions | None, new: LoadedFunctions) -> None:
        old_functions = serving.functions if serving is not None else {}
        old_files = serving.files if serving is not None else {}
        touched = importers(new.files, changed_names(old_files, new.files))
        for path, fn in sorted(new.functions.items()):
            before = old_functions.get(path)
            if before is None:
                self.added_functions.append(path)
            elif _signature(before) != _signature(fn) or _module(path) in touched:
                self.changed_functions.append(path)
            else:
                self.unchanged_functions += 1
        self.removed_functions = sorted(set(old_functions) - set(new.functions))
        if _crons(serving) != _crons(new):
            self.other_changes.append("crons")
        if _routes(serving) != _routes(new):
            self.other_changes.append("http routes")

    @property
    def changes(self) -> bool:
        """Whether deploying changes anything the deployment serves."""
        return self.base != self.code

    # -- wire -------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "base": self.base,
            "code": self.code,
            "tables": {"added": self.added_tables, "removed": self.removed_tables},
            "indexes": {
                "added": [_index_json(i) for i in self.added_indexes],
                "removed": [_index_json(i) for i in self.removed_indexes],
            },
            "searchIndexesChanged": self.search_changed,
            "validatorsChanged": self.validators_changed,
            "functions": {
                "added": self.added_functions,
                "changed": self.changed_functions,
                "removed": self.removed_functions,
                "unchanged": self.unchanged_functions,
            },
            "otherChanges": self.other_changes,
            "violations": [violation_json(v) for v in self.violations],
            "checked": self.checked,
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> DeployPlan:
        tables, indexes, functions = obj["tables"], obj["indexes"], obj["functions"]
        return cls(
            base=str(obj["base"]),
            code=str(obj["code"]),
            added_tables=[str(t) for t in tables["added"]],
            removed_tables=[str(t) for t in tables["removed"]],
            added_indexes=[_index(i) for i in indexes["added"]],
            removed_indexes=[_index(i) for i in indexes["removed"]],
            search_changed=[str(t) for t in obj.get("searchIndexesChanged", [])],
            validators_changed=[str(t) for t in obj.get("validatorsChanged", [])],
            added_functions=[str(f) for f in functions["added"]],
            changed_functions=[str(f) for f in functions["changed"]],
            removed_functions=[str(f) for f in functions["removed"]],
            unchanged_functions=int(functions["unchanged"]),
            other_changes=[str(c) for c in obj.get("otherChanges", [])],
            violations=[violation_from_json(v) for v in obj.get("violations", [])],
            checked=int(obj.get("checked", 0)),
        )

    # -- for people -------------------------------------------------------------------------
    def lines(self) -> list[str]:
        """The plan as ``pyconvex deploy`` prints it: one section per kind of change."""
        out: list[str] = []
        tables = [f"  + {t}" for t in self.added_tables]
        tables += [
            f"  - {t} (left the schema; its documents are kept)" for t in self.removed_tables
        ]
        tables += [
            f"  ~ {t} (validator changed)"
            for t in self.validators_changed
            if t not in self.added_tables
        ]
        tables += [f"  ~ {t} (search indexes rebuilt)" for t in self.search_changed]
        if tables:
            out += ["Tables:", *tables]
        indexes = [
            f"  + {i.table}.{i.name} {json.dumps(i.fields)}"
            + (
                f" (backfilled from {i.documents:,} documents before the switch)"
                if i.documents
                else ""
            )
            for i in self.added_indexes
        ]
        indexes += [f"  - {i.table}.{i.name}" for i in self.removed_indexes]
        if indexes:
            out += ["Indexes:", *indexes]
        functions = [f"  + {f}" for f in self.added_functions]
        functions += [f"  ~ {f}" for f in self.changed_functions]
        functions += [f"  - {f}" for f in self.removed_functions]
        functions += [f"  ~ {what}" for what in self.other_changes]
        if functions or self.unchanged_functions:
            out.append("Functions:")
            out += functions
            if self.unchanged_functions:
                n = self.unchanged_functions
                out.append(f"  ({n} unchanged function{'s' if n != 1 else ''})")
        return out


def violation_json(v: SchemaViolation) -> dict[str, str]:
    return {
        "table": v.table,
        "docId": v.doc_id,
        "field": v.field,
        "expected": v.expected,
        "found": v.found,
        "message": v.message,
        "kind": v.kind,
    }


def violation_from_json(obj: dict[str, Any]) -> SchemaViolation:
    return SchemaViolation(
        str(obj["table"]),
        str(obj["docId"]),
        str(obj["field"]),
        str(obj["expected"]),
        str(obj["found"]),
        str(obj["message"]),
        _violation_kind(obj.get("kind")),
    )


def _violation_kind(kind: object) -> ViolationKind:
    if kind == "missing" or kind == "extra":
        return kind
    return "mismatch"


def _index_json(i: IndexChange) -> dict[str, Any]:
    return {"table": i.table, "name": i.name, "fields": i.fields, "documents": i.documents}


def _index(obj: dict[str, Any]) -> IndexChange:
    return IndexChange(
        str(obj["table"]),
        str(obj["name"]),
        [str(f) for f in obj.get("fields", [])],
        int(obj.get("documents", 0)),
    )


def _signature(fn: FunctionDefinition) -> str:
    return json.dumps(
        [
            fn.kind,
            fn.visibility,
            None if fn.args is None else fn.args.to_json(),
            None if fn.returns is None else fn.returns.to_json(),
        ],
        sort_keys=True,
        default=repr,
    )


def _module(path: str) -> str:
    return path.partition(":")[0].replace("/", ".")


def _crons(loaded: LoadedFunctions | None) -> str:
    crons = loaded.crons if loaded is not None else None
    jobs = [
        [job.name, function_ref_path(job.function), repr(dict(job.args)), job.schedule.to_json()]
        for job in crons or ()
    ]
    return json.dumps(jobs, sort_keys=True, default=repr)


def _routes(loaded: LoadedFunctions | None) -> list[str]:
    router = loaded.http if loaded is not None else None
    return [] if router is None else [r.label for r in router.routes]

"""Schema push: diff a new schema against the live tables, check the documents, migrate, swap.

A push of new code and schema to a running deployment, as Convex does it on each save:

1. diff the new schema against what is in force (:func:`diff_schema`): new tables, indexes to
   build or drop, tables whose document validator changed;
2. check every document of those tables against its new validator; the first mismatch per table
   refuses the push (:class:`SchemaViolation` names the table, ``_id``, field, expected and
   found) and nothing changes;
3. build the new indexes from the documents ("instant migrations": a backfill that yields to the
   event loop between chunks, reporting progress, while the old code keeps serving);
4. in one synchronous step — no request can see half of it — re-check the documents written
   meanwhile, install the new indexes, drop the removed ones and swap code and schema;
5. create the new tables durably, refresh the SQL views, remember the schema in force.

::

    result = await push(deployment, loaded, accepted=previous_schema_json)
    if not result.ok:
        print(result.violations[0].message)
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pyconvex.errors import ValidationError
from pyconvex.runtime.functions.loader import LoadedFunctions
from pyconvex.runtime.query.transaction import table_number_of
from pyconvex.runtime.store.index import Document, IndexSpec, MemoryIndex
from pyconvex.runtime.store.memory import BY_CREATION_TIME, Store, TableState, parse_document
from pyconvex.runtime.store.read_set import Commit
from pyconvex.runtime.store.schema_state import SchemaState
from pyconvex.server.schema import SchemaDefinition
from pyconvex.values.validator import describe
from pyconvex.values.validators import Validator

if TYPE_CHECKING:
    from pyconvex.runtime.functions.deployment import Deployment

#: Documents checked or indexed between two yields to the event loop.
CHUNK = 2000
#: ``_meta`` key under which the schema in force is remembered across restarts.
SCHEMA_META_KEY = "schema"
_PENDING = "\x00pending:"
_SYSTEM_FIELDS = ("_id", "_creationTime")

#: ``progress(what, done, total)``, e.g. ``("index messages.by_author", 2000, 100000)``.
Progress = Callable[[str, int, int], None]


ViolationKind = Literal["missing", "extra", "mismatch"]


@dataclass(frozen=True, slots=True)
class SchemaViolation:
    """A stored document that does not match its table's new validator."""

    table: str
    doc_id: str
    #: The field path inside the document (".author", ".reactions[0].emoji"), "" for the whole.
    field: str
    expected: str
    found: str
    message: str
    #: What is wrong with the field: it is ``missing``, ``extra`` (not in the validator), or
    #: its value does not match (``mismatch``): each has its own way out.
    kind: ViolationKind = "mismatch"


@dataclass(slots=True)
class SchemaDiff:
    """What a new schema changes for the tables as they are."""

    added_tables: list[str] = field(default_factory=list)
    #: Tables that left the schema: their documents are kept (and no longer validated).
    removed_tables: list[str] = field(default_factory=list)
    #: (table, spec) of indexes to build: new ones and ones whose fields changed.
    added_indexes: list[tuple[str, IndexSpec]] = field(default_factory=list)
    removed_indexes: list[tuple[str, str]] = field(default_factory=list)
    #: Tables with documents whose validator changed: each document must be checked.
    revalidate: list[str] = field(default_factory=list)
    #: Every table whose validator changed (documents written during the push are checked).
    validators_changed: list[str] = field(default_factory=list)
    #: Tables whose search indexes changed (rebuilt on their next search).
    search_changed: list[str] = field(default_factory=list)

    @property
    def migrations(self) -> bool:
        """Whether anything in the tables changes (not just validators or code)."""
        return bool(
            self.added_tables or self.added_indexes or self.removed_indexes or self.search_changed
        )

    def summary(self) -> list[str]:
        """One line per change, for the console."""
        out = [f"new table {t}" for t in self.added_tables]
        out += [f"table {t} left the schema (its documents are kept)" for t in self.removed_tables]
        out += [f"index {t}.{s.name} {list(s.fields)}" for t, s in self.added_indexes]
        out += [f"dropped index {t}.{name}" for t, name in self.removed_indexes]
        out += [f"search indexes of {t} changed" for t in self.search_changed]
        return out


@dataclass(slots=True)
class PushResult:
    """The outcome of :func:`push`: refused with ``violations``, or swapped in."""

    diff: SchemaDiff
    violations: list[SchemaViolation] = field(default_factory=list)
    #: Documents checked and index entries built, for the console and benchmarks.
    checked: int = 0
    indexed: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.violations


def schema_json(schema: SchemaDefinition | None) -> dict[str, Any] | None:
    """The JSON form a schema is compared and remembered in (None: no schema)."""
    return None if schema is None else schema.to_json()


def diff_schema(
    store: Store, accepted: dict[str, Any] | None, new: SchemaDefinition | None
) -> SchemaDiff:
    """What changes when ``new`` replaces the schema ``accepted`` (its :func:`schema_json`;
    None when no schema was ever accepted: every table with documents is checked).

    Indexes are compared with the ones the store actually holds.
    """
    diff = SchemaDiff()
    state = SchemaState(new)
    old_tables = {t["tableName"]: t for t in (accepted or {}).get("tables", [])}
    new_tables = new.tables if new is not None else {}
    validating = new is not None and new.schema_validation
    old_validating = accepted is not None and accepted.get("schemaValidation", True)
    for name in sorted(new_tables):
        if name not in store.tables:
            diff.added_tables.append(name)
        old = old_tables.get(name)
        if validating and (
            not old_validating
            or old is None
            or old.get("documentType") != new_tables[name].document.to_json()
        ):
            diff.validators_changed.append(name)
    diff.removed_tables = sorted(set(old_tables) - set(new_tables))
    for name, table in sorted(store.tables.items()):
        if table.is_system:
            continue
        wanted = {s.name: s for s in state.index_specs(name)}
        live = {n: m.spec for n, m in table.indexes.items() if n != BY_CREATION_TIME}
        for index, spec in wanted.items():
            if index not in live or live[index].fields != spec.fields:
                diff.added_indexes.append((name, spec))
        for index, spec in live.items():
            if index not in wanted or wanted[index].fields != spec.fields:
                diff.removed_indexes.append((name, index))
        definition = new_tables.get(name)
        old = old_tables.get(name)
        if name in diff.validators_changed and table.docs:
            diff.revalidate.append(name)
        new_search = [] if definition is None else definition.to_json()["searchIndexes"]
        if (old or {}).get("searchIndexes", []) != new_search and table.search is not None:
            diff.search_changed.append(name)
    return diff


async def push(
    deployment: Deployment,
    loaded: LoadedFunctions,
    *,
    accepted: dict[str, Any] | None,
    progress: Progress | None = None,
    after_swap: Callable[[], None] | None = None,
) -> PushResult:
    """Check ``loaded.schema`` against the stored documents, build its new indexes and swap
    ``loaded`` in (see the module docstring). ``after_swap`` runs in the same synchronous step
    as the swap (re-run subscriptions there). Refused pushes change nothing. Never while an
    import puts its documents in (its indexes would miss them): it waits for the import."""
    async with deployment.committer.gate.exclusive():
        return await _push(deployment, loaded, accepted, progress, after_swap)


async def _push(
    deployment: Deployment,
    loaded: LoadedFunctions,
    accepted: dict[str, Any] | None,
    progress: Progress | None,
    after_swap: Callable[[], None] | None,
) -> PushResult:
    started = time.perf_counter()
    store = deployment.store
    diff = diff_schema(store, accepted, loaded.schema)
    result = PushResult(diff)
    state = SchemaState(loaded.schema)
    watcher = _WriteWatcher(deployment, store.head_ts)
    pending: list[tuple[TableState, str, str]] = []
    swapped = False
    old_columns = deployment.schema.view_columns()
    try:
        await _check_tables(store, state, result, progress)
        if result.violations:
            return result
        for table_name, spec in diff.added_indexes:
            table = store.tables[table_name]
            temp = _PENDING + spec.name
            pending.append((table, temp, spec.name))
            await _backfill(table, spec, temp, result, progress)
        # One synchronous step from here to the swap.
        result.violations.extend(_recheck(store, state, diff.validators_changed, watcher))
        if result.violations:
            return result
        for table_name, index in diff.removed_indexes:
            store.tables[table_name].indexes.pop(index, None)
        for table, temp, name in pending:
            table.indexes[name] = table.indexes.pop(temp)
        for table_name in diff.search_changed:
            store.tables[table_name].search = None  # rebuilt with the new definitions
        deployment.swap(loaded, state)
        swapped = True
        if after_swap is not None:
            after_swap()
    finally:
        watcher.close()
        if not swapped:  # refused, or interrupted: the indexes being built go away
            for table, temp, _ in pending:
                table.indexes.pop(temp, None)
        result.seconds = time.perf_counter() - started
    if diff.added_tables:
        await deployment.create_tables(diff.added_tables)
    if state.view_columns() != old_columns:
        await deployment.refresh_views()
    return result


async def check_push(
    deployment: Deployment,
    loaded: LoadedFunctions,
    *,
    accepted: dict[str, Any] | None,
    progress: Progress | None = None,
) -> PushResult:
    """What :func:`push` would find, changing nothing: the diff, and the stored documents the
    new schema refuses (the first of each table). ``pyconvex deploy`` shows it before asking."""
    started = time.perf_counter()
    store = deployment.store
    result = PushResult(diff_schema(store, accepted, loaded.schema))
    await _check_tables(store, SchemaState(loaded.schema), result, progress)
    result.seconds = time.perf_counter() - started
    return result


async def read_accepted_schema(deployment: Deployment) -> dict[str, Any] | None:
    """The schema last pushed to this deployment's data (None: none recorded)."""
    rows = await deployment.sql("SELECT value FROM _meta WHERE key = ?", [SCHEMA_META_KEY])
    if not rows:
        return None
    value = json.loads(rows[0][0])
    return value if isinstance(value, dict) else None


async def write_accepted_schema(deployment: Deployment, accepted: dict[str, Any] | None) -> None:
    """Remember the schema in force (the next start checks only what changed since)."""
    if accepted is None:
        await deployment.sql("DELETE FROM _meta WHERE key = ?", [SCHEMA_META_KEY])
        return
    await deployment.sql(
        "INSERT OR REPLACE INTO _meta VALUES (?, ?)",
        [SCHEMA_META_KEY, json.dumps(accepted, sort_keys=True)],
    )


# -- checking documents --------------------------------------------------------------------------


class _Ids:
    """``v.id(table)`` checks against the live tables."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def table_for_id(self, id_str: str) -> str | None:
        number = table_number_of(id_str)
        table = None if number is None else self.store.tables_by_number.get(number)
        return None if table is None else table.name


def check_document(
    validator: Validator, table: str, doc: Document, ids: _Ids | None = None
) -> SchemaViolation | None:
    """Whether a stored document matches ``validator``; the mismatch if it does not."""
    body = {k: v for k, v in doc.items() if k not in _SYSTEM_FIELDS}
    try:
        validator.validate(body, "", ids)
    except ValidationError as e:
        return _violation(table, str(doc.get("_id")), body, e)
    return None


async def _check_tables(
    store: Store, state: SchemaState, result: PushResult, progress: Progress | None
) -> None:
    for table_name in result.diff.revalidate:
        found = await _check_table(store, state, table_name, result, progress)
        if found is not None:
            result.violations.append(found)


async def _check_table(
    store: Store, state: SchemaState, name: str, result: PushResult, progress: Progress | None
) -> SchemaViolation | None:
    validator = state.document_validator(name)
    table = store.tables.get(name)
    if validator is None or table is None:
        return None
    ids = _Ids(store)
    doc_ids = list(table.docs)
    total = len(doc_ids)
    for start in range(0, total, CHUNK):
        for doc_id in doc_ids[start : start + CHUNK]:
            raw = table.docs.get(doc_id)
            if raw is None:
                continue  # deleted meanwhile
            doc = parse_document(raw) if isinstance(raw, str) else raw
            result.checked += 1
            found = check_document(validator, name, doc, ids)
            if found is not None:
                return found
        if progress is not None:
            progress(f"check {name}", min(start + CHUNK, total), total)
        await asyncio.sleep(0)
    return None


class _WriteWatcher:
    """Which documents durable commits wrote since it started (checked again before a swap)."""

    def __init__(self, deployment: Deployment, since_ts: int) -> None:
        self.since_ts = since_ts
        self.written: dict[str, set[str]] = {}
        self.close = deployment.add_commit_listener(self._on_commit)

    def _on_commit(self, latest_ts: int, commits: list[Commit]) -> None:
        for commit in commits:
            for entry in commit.writes.entries:
                self.written.setdefault(entry.table, set()).add(entry.doc_id)


def _recheck(
    store: Store, state: SchemaState, tables: list[str], watcher: _WriteWatcher
) -> list[SchemaViolation]:
    """Check the documents written while the push ran (durable, or applied and pending)."""
    out = []
    ids = _Ids(store)
    for name in tables:
        table = store.tables.get(name)
        validator = state.document_validator(name)
        if table is None or validator is None:
            continue
        doc_ids = set(watcher.written.get(name, ()))
        doc_ids.update(i for i, h in table.history.items() if h[-1][0] > watcher.since_ts)
        for doc_id in sorted(doc_ids):
            doc = table.doc(doc_id)
            if doc is None:
                continue
            found = check_document(validator, name, doc, ids)
            if found is not None:
                out.append(found)
                break
    return out


_MUST_BE = re.compile(r" must be (.+?), got (.+)$", re.S)
_MISSING = re.compile(r'is missing the required field "([^"]+)" \((.+)\)$', re.S)
_UNEXPECTED = re.compile(r'has an unexpected field "([^"]+)" \((.+)\)$', re.S)


def _violation(table: str, doc_id: str, body: Document, e: ValidationError) -> SchemaViolation:
    message = e.detail
    path = e.path
    kind: ViolationKind = "mismatch"
    if m := _MISSING.search(message):
        path = f"{path}.{m.group(1)}"
        expected, found, kind = m.group(2), "nothing (the field is missing)", "missing"
    elif m := _UNEXPECTED.search(message):
        path = f"{path}.{m.group(1)}"
        expected, kind = f"no such field ({m.group(2)})", "extra"
        found = describe(_at(body, path))
    elif m := _MUST_BE.search(message):
        expected, found = m.group(1), m.group(2)
    else:
        expected, found = "a value matching the schema", describe(_at(body, path))
    where = path or "(the document)"
    return SchemaViolation(
        table,
        doc_id,
        path,
        expected,
        found,
        # Convex's text first (as its schema push writes it), then pyconvex's.
        f'Document with ID "{doc_id}" in table "{table}" does not match the schema: '
        f"{e.convex}\nDocument {doc_id} in table {table!r} does not match the schema at "
        f"{where}: expected {expected}, found {found}.",
        kind,
    )


_STEP = re.compile(r"\.([^.\[]+)|\[(\d+)\]")


def _at(value: Any, path: str) -> Any:
    for m in _STEP.finditer(path):
        if m.group(1) is not None and isinstance(value, dict):
            value = value.get(m.group(1))
        elif m.group(2) is not None and isinstance(value, list) and int(m.group(2)) < len(value):
            value = value[int(m.group(2))]
        else:
            return None
    return value


# -- building indexes ----------------------------------------------------------------------------


async def _backfill(
    table: TableState, spec: IndexSpec, temp: str, result: PushResult, progress: Progress | None
) -> None:
    """Fill a new index of ``table`` under the private name ``temp``.

    The index is registered (empty) first, so writes made while it fills keep it current; each
    chunk then adds the keys of the documents as they are at that moment — every retained
    version, as the store's other indexes hold them.
    """
    mem = MemoryIndex(spec)
    table.indexes[temp] = mem
    doc_ids = list(table.docs)
    doc_ids.extend(i for i in table.history if i not in table.docs)
    total = len(doc_ids)
    label = f"index {table.name}.{spec.name}"
    key = spec.key
    for start in range(0, total, CHUNK):
        keys: list[bytes] = []
        for doc_id in doc_ids[start : start + CHUNK]:
            h = table.history.get(doc_id)
            if h is None:
                raw = table.docs.get(doc_id)
                if raw is not None:
                    keys.append(key(parse_document(raw) if isinstance(raw, str) else raw))
                continue
            keys.extend(key(version) for _, version in h if version is not None)
        # Writes since the index was registered added their keys already.
        fresh = [k for k in set(keys) if k not in mem.keys]
        mem.keys.update(fresh)
        result.indexed += len(fresh)
        if progress is not None:
            progress(label, min(start + CHUNK, total), total)
        await asyncio.sleep(0)

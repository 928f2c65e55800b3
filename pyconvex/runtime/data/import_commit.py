"""``pyconvex import``: documents checked, written ahead in chunks, then committed at once.

1. **Check** (a chunk of rows per loop turn, so the server goes on serving; a JSONL file is
   parsed a chunk at a time too): every row is validated against the schema, its ``_id``
   (kept from a snapshot, else minted) and ``_creationTime`` settled and its index keys
   computed (:mod:`.import_rows`). The first bad row is an :class:`ImportRefused` naming the
   file, the line (or row) and the field — and nothing was written.
2. **Write ahead**: meanwhile the writer process serialises the documents and puts them into
   a staging table of their own in DuckDB (``Persistence.stage_documents``), on its own core;
   other commits go on between the chunks. A refused import drops them.
3. **Put ahead**: the documents' versions and index keys go into the in-memory store,
   ``BULK_CHUNK`` per loop turn, stamped with a commit timestamp not made yet (``PendingTs``:
   in every reader's future), while queries and mutations go on.
4. **Commit**: with new mutations waiting (``WriteGate.hold``), the timestamp is made, and the
   documents become the tables' newest versions, a chunk per turn (``replace`` first deletes
   the tables' documents, ``replace-all`` every table's, the same way); then the committer
   gets one commit whose DuckDB transaction moves the staged rows into the log. Queries read
   at the durable timestamp, so none sees any of it before that commit is durable; mutations
   run again once it is handed over. Each subscription updates once.

Without a mode, a table that already holds documents is refused; ``append`` adds to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pyconvex.errors import PyconvexError
from pyconvex.runtime.data.import_files import ImportPlan, ImportRefused, Source
from pyconvex.runtime.data.import_rows import RowChecker
from pyconvex.runtime.store.committer import Committer, PendingCommit
from pyconvex.runtime.store.index import IndexSpec, id_from_key
from pyconvex.runtime.store.memory import BY_CREATION_TIME, FIRST_USER_TABLE, Store, UndoRecord
from pyconvex.runtime.store.persistence import DocumentWrite, Persistence
from pyconvex.runtime.store.read_set import BULK_WRITES, WriteEntry, WriteSet
from pyconvex.runtime.store.schema_state import SchemaState
from pyconvex.runtime.store.write_gate import PendingTs
from pyconvex.values.ids import decode_id

MODES = ("append", "replace", "replace-all")
#: Rows parsed and checked per loop turn (others are served in between): ~10 ms of work.
CHUNK = 2_000
#: Rows per chunk written ahead to DuckDB (handing it over is one more ~5 ms turn; measured
#: at 1M rows, 5,000 / 20,000 gave 80 ms turns and no more throughput).
STAGE_ROWS = 10_000

#: Documents put into memory (or deleted, for a replace) per loop turn at the commit: ~15 ms.
BULK_CHUNK = 10_000

#: ``progress(phase, table, done, total)``: phase "checking" (rows checked and written
#: ahead) or "committing".
Progress = Callable[[str, str, int, int], None]


class ImportDeployment(Protocol):
    store: Store
    schema: SchemaState
    committer: Committer

    @property
    def persistence(self) -> Persistence: ...


@dataclass
class ImportSummary:
    documents: dict[str, int]
    files: int
    ts: int


@dataclass
class _Prepared:
    """One table's documents, checked and ready to go in."""

    name: str
    number: int
    docs: list[dict[str, Any]] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    #: Per index: every document's key, sorted.
    sorted_keys: dict[str, list[bytes]] = field(default_factory=dict)
    #: Each document's write-set entry (its index keys), in ``docs`` order.
    entries: list[WriteEntry] = field(default_factory=list)
    specs: dict[str, IndexSpec] = field(default_factory=dict)
    ids: set[str] = field(default_factory=set)


async def run_import(
    dep: ImportDeployment,
    plan: ImportPlan,
    mode: str | None,
    files_zip: Path | None = None,
    files: Any = None,
    progress: Progress | None = None,
) -> ImportSummary:
    """Check every row of ``plan`` against the schema, write it ahead, then commit it all at
    one timestamp (see the module docstring). ``files`` is the FileStorage (a ZIP's blobs)."""
    if mode is not None and mode not in MODES:
        raise ImportRefused("BadMode", f"mode must be one of {', '.join(MODES)}, got {mode!r}.")
    _check_tables(dep, plan, mode)
    with _gc_paused():
        summary = await _import(dep, plan, mode, files_zip, files, progress)
        if gc.get_freeze_count():
            # The server keeps the store it loaded out of the collector's sight
            # (event_loop.freeze_loaded_state): what the import put in joins it.
            gc.freeze()
    return summary


async def _import(
    dep: ImportDeployment,
    plan: ImportPlan,
    mode: str | None,
    files_zip: Path | None,
    files: Any,
    progress: Progress | None,
) -> ImportSummary:
    key = uuid.uuid4().hex
    try:
        prepared = []
        reserved: set[int] = set()
        for name, source in plan.tables.items():
            table = await _prepare(dep, name, source, plan, key, reserved, progress)
            reserved.add(table.number)
            prepared.append(table)
        blobs: list[Any] = []
        if plan.files is not None and files_zip is not None and files is not None:
            blobs = await _store_blobs(files, plan.files, files_zip)
        if progress is not None:
            progress("committing", "", 0, 0)
        durable, summary, touched = await _commit(dep, plan, prepared, mode, key, blobs)
    except BaseException:
        # Rows written ahead before the refusal (a bad row late in the file): drop them
        # (after any chunk still on its way: the writer answers requests in order).
        with contextlib.suppress(Exception):
            await dep.persistence.drop_staged(key)
        raise
    # Submitted: its batch moves the staged rows, so they stay even if this await is cancelled.
    await asyncio.shield(durable)
    await _let_go(touched)
    return summary


async def _let_go(items: list[Any]) -> None:
    """Free a bulk write's million undo entries a chunk per loop turn, rather than all in one
    when the import returns."""
    while items:
        del items[-5 * BULK_CHUNK :]
        await asyncio.sleep(0)


def _table_number(
    store: Store, name: str, plan: ImportPlan, first: list[tuple[int, Any]], reserved: set[int]
) -> int:
    """The number of table ``name`` for this import. A snapshot ZIP says it; else a table that
    exists keeps its own; else a new table takes the number its rows' ``_id``s carry, as
    Convex does (a table exported alone goes back in with its ids, and so references to
    them stay valid), or the next free one for rows without."""
    number = plan.numbers.get(name)
    if number is not None:
        return number
    existing = store.tables.get(name)
    given = _id_table_number(first[0][1]) if first else None
    if existing is not None:
        if given is not None and given != existing.number:
            raise ImportRefused(
                "TableNumberMismatch",
                f"The rows' _ids are ids of table number {given}, but table {name!r} is number "
                f"{existing.number} here, so they cannot be kept: ids carry their table's "
                "number. Import into a project where the table does not exist yet (with no "
                "server running, a fresh project creates it with the ids' number), or leave "
                "the _id column out to give the documents new ids.",
            )
        return existing.number
    if given is not None and given >= FIRST_USER_TABLE and given not in reserved:
        other = store.tables_by_number.get(given)
        if other is None:
            return given
        raise ImportRefused(
            "TableNumberMismatch",
            f"The rows' _ids are ids of table number {given}, which is table {other.name!r} "
            f"here, so they cannot be kept for {name!r}. Import into a fresh project, or leave "
            "the _id column out to give the documents new ids.",
        )
    number = store.next_table_number()
    while number in reserved:
        number += 1
    return number


def _id_table_number(row: Any) -> int | None:
    """The table number of a row's ``_id`` (None without one, or for one that is not an id:
    the row check says so)."""
    doc_id = row.get("_id") if isinstance(row, dict) else None
    if not isinstance(doc_id, str):
        return None
    try:
        return decode_id(doc_id)[0]
    except (PyconvexError, ValueError):
        return None


def _check_tables(dep: ImportDeployment, plan: ImportPlan, mode: str | None) -> None:
    store, schema = dep.store, dep.schema
    for table in plan.tables:
        close = schema.undeclared(table)
        if close is not None:
            hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            raise ImportRefused(
                "UnknownTable",
                f"The schema declares no table {table!r} (its tables: "
                f"{', '.join(schema.declared_tables())}).{hint} Import into one of those, or "
                "add the table to convex/schema.py.",
            )
        existing = store.tables.get(table)
        if mode is None and existing is not None and existing.docs:
            raise _not_empty(table, len(existing.docs))
        number = plan.numbers.get(table)
        if number is not None and existing is not None and existing.number != number:
            raise ImportRefused(
                "TableNumberMismatch",
                f"Table {table!r} has number {existing.number} here but {number} in the "
                "snapshot, so the snapshot's ids would point at the wrong table. Import it into "
                "a deployment where that table does not exist yet (a fresh project).",
            )
        if number is not None and existing is None:
            other = store.tables_by_number.get(number)
            if other is not None:
                raise ImportRefused(
                    "TableNumberMismatch",
                    f"The snapshot's table {table!r} has number {number}, which is table "
                    f"{other.name!r} here. Import it into a fresh project.",
                )


def _not_empty(table: str, count: int) -> ImportRefused:
    return ImportRefused(
        "TableNotEmpty",
        f"Table {table!r} already holds {count} documents. Pass --append to add to it, "
        "--replace to replace it, or --replace-all to make the deployment exactly this import.",
    )


def _index_specs(dep: ImportDeployment, name: str) -> dict[str, IndexSpec]:
    table = dep.store.tables.get(name)
    if table is not None:
        return {n: mem.spec for n, mem in table.indexes.items()}
    specs = {BY_CREATION_TIME: IndexSpec(BY_CREATION_TIME, ())}
    specs.update((s.name, s) for s in dep.schema.index_specs(name))
    return specs


async def _prepare(
    dep: ImportDeployment,
    name: str,
    source: Source,
    plan: ImportPlan,
    key: str,
    reserved: set[int],
    progress: Progress | None,
) -> _Prepared:
    store = dep.store
    chunks = source.chunks(CHUNK)
    try:
        first = next(chunks, [])
        number = _table_number(store, name, plan, first, reserved)
        out = _Prepared(name, number, specs=_index_specs(dep, name))
        out.sorted_keys = {n: [] for n in out.specs}
        checker = RowChecker(
            name,
            number,
            source,
            dep.schema.document_validator(name),
            out.specs,
            store.next_creation_time,
            time.time() * 1000,
            keyless=source.total > BULK_WRITES,
        )
        out.ids = checker.ids
        total = source.total
        checked = 0
        staged = 0  # documents handed to the writer so far
        writing: list[asyncio.Future[list[int]]] = []
        docs = out.docs
        for chunk in itertools.chain([first] if first else [], chunks):
            chunk_docs, chunk_keys, chunk_entries = checker.check(chunk)
            checked = chunk[-1][0] if source.path is not None else checked + len(chunk)
            docs += chunk_docs
            out.entries += chunk_entries
            for index, column in chunk_keys.items():
                out.sorted_keys[index] += sorted(column)  # a sorted run; merged at the end
            if len(docs) - staged >= STAGE_ROWS:
                await _stage(dep, key, number, docs, staged, writing, out)
                staged = len(docs)
            if progress is not None:
                progress("checking", name, checked, total)
            await asyncio.sleep(0)
    finally:
        chunks.close()
    if len(docs) > staged:
        await _stage(dep, key, number, docs, staged, writing, out)
    if progress is not None:
        progress("checking", name, total, total)
    for future in writing:
        out.sizes += await future
    for keys in out.sorted_keys.values():
        keys.sort()  # sorted runs: timsort merges them
    return out


async def _stage(
    dep: ImportDeployment,
    key: str,
    number: int,
    docs: list[dict[str, Any]],
    start: int,
    writing: list[asyncio.Future[list[int]]],
    out: _Prepared,
) -> None:
    """Hand ``docs[start:]`` to the writer process, which serialises them (on its own core)
    and answers with their sizes; two chunks in flight at most."""
    if len(writing) >= 2:
        out.sizes += await writing.pop(0)
    writing.append(
        asyncio.ensure_future(dep.persistence.stage_documents(key, number, docs[start:]))
    )


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """CPython's cyclic garbage collector held off during an import: the millions of objects
    it creates (documents, keys, every document's history, undo and collection entries) set
    off collections over the whole heap, each holding the event loop for hundreds of ms, which
    took as long again as the work itself (measured, 1M documents: 1.17 -> 0.64 s for the
    history alone)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


async def _commit(
    dep: ImportDeployment,
    plan: ImportPlan,
    prepared: list[_Prepared],
    mode: str | None,
    key: str,
    blobs: list[Any],
) -> tuple[asyncio.Future[int], ImportSummary, list[Any]]:
    """Everything into memory at one timestamp, a chunk per loop turn, then one commit
    submitted (see ``store/write_gate.py``): first the versions and keys, at a timestamp not
    made yet, while everything else goes on; then, with new mutations waiting, the rest.
    Returns the future resolved when the commit is durable, the summary, and the commit's
    undo entries (for :func:`_let_go` once it is durable)."""
    committer, store = dep.committer, dep.store
    async with committer.gate.exclusive():  # no schema push, nor another import, meanwhile
        _check_unchanged(dep, prepared, mode)
        pending = PendingTs()
        undo = UndoRecord(pending)
        new_tables: list[tuple[int, str]] = []
        try:
            again = await _put_ahead(dep, prepared, undo, new_tables)
            async with committer.gate.hold(committer.wait_idle):
                _check_unchanged(dep, prepared, mode)  # what mutations did meanwhile
                pending.settle(store.next_ts())
                undo.ts = pending.value  # type: ignore[assignment]
                return await _put_in(dep, plan, prepared, mode, key, blobs, undo, again, new_tables)
        except BaseException:
            store.undo(undo)
            if pending.value is None:  # its collection entries are for nothing now
                pending.settle(0)
            raise


async def _put_ahead(
    dep: ImportDeployment,
    prepared: list[_Prepared],
    undo: UndoRecord,
    new_tables: list[tuple[int, str]],
) -> dict[str, set[str]]:
    """The documents' versions, at ``undo.ts`` (a :class:`PendingTs`: no reader sees them),
    and their index keys. Returns, per table, the ids it holds (or held lately) that the
    import writes again (a snapshot imported over itself): those go in as new versions of
    them, in the last step."""
    store = dep.store
    again: dict[str, set[str]] = {}
    for p in prepared:
        table = store.tables.get(p.name)
        if table is None:
            table = store.create_table(p.name, p.number)
            store.set_indexes(table, dep.schema.index_specs(p.name))
            undo.created_tables.append(p.name)
            new_tables.append((table.number, p.name))
        kept = again[p.name] = p.ids.intersection(table.docs) | p.ids.intersection(table.history)
        for start in range(0, len(p.docs), BULK_CHUNK):
            end = start + BULK_CHUNK
            (docs, sizes, _), _ = _split(kept, p.docs[start:end], p.sizes[start:end], [])
            store.insert_versions(table, docs, sizes, undo)
            await asyncio.sleep(0)
        # A reader finding one of these keys finds the version above, in its future.
        for index, keys in p.sorted_keys.items():
            if kept:  # those documents' keys go in with them
                keys = await _keys_without(keys, kept)
            # After all the index holds (a new table's, and by_creation_time's): a chunk per
            # turn, as long as nothing bigger came in meanwhile.
            done = 0
            while done < len(keys) and store.append_keys(
                table, index, keys[done : done + 5 * BULK_CHUNK]
            ):
                done += 5 * BULK_CHUNK
                await asyncio.sleep(0)
            keys = keys[done:]
            # Into a much bigger index they go one by one: a chunk per turn.
            many = len(keys) * 4 >= len(table.indexes[index].keys)
            step = max(len(keys), 1) if many else BULK_CHUNK
            for start in range(0, len(keys), step):
                store.add_keys(table, index, keys[start : start + step])
                await asyncio.sleep(0)
    return again


def _check_unchanged(dep: ImportDeployment, prepared: list[_Prepared], mode: str | None) -> None:
    """What may have changed while the rows were checked."""
    store = dep.store
    for p in prepared:
        existing = store.tables.get(p.name)
        if existing is None and set(p.specs) != set(_index_specs(dep, p.name)):
            raise ImportRefused(
                "Conflict",
                f"The indexes of table {p.name!r} changed while the import ran (the schema was "
                "pushed). Run the import again.",
            )
        if existing is None:
            other = store.tables_by_number.get(p.number)
            if other is not None:
                raise ImportRefused(
                    "Conflict",
                    f"Table {other.name!r} was created with number {p.number} while the import "
                    "ran. Run the import again.",
                )
            continue
        if existing.number != p.number or set(existing.indexes) != set(p.specs):
            raise ImportRefused(
                "Conflict",
                f"Table {p.name!r} changed while the import ran (the schema was pushed). "
                "Run the import again.",
            )
        if mode is None and existing.docs:
            raise _not_empty(p.name, len(existing.docs))
        if mode == "append" and not p.ids.isdisjoint(existing.docs):
            clash = next(iter(p.ids.intersection(existing.docs)))
            raise ImportRefused(
                "DuplicateId", f"Table {p.name!r} already holds a document with _id {clash}."
            )


async def _put_in(
    dep: ImportDeployment,
    plan: ImportPlan,
    prepared: list[_Prepared],
    mode: str | None,
    key: str,
    blobs: list[Any],
    undo: UndoRecord,
    again: dict[str, set[str]],
    new_tables: list[tuple[int, str]],
) -> tuple[asyncio.Future[int], ImportSummary, list[Any]]:
    """The last step, at ``undo.ts``: a replace's deletions, the documents as the tables'
    newest versions, the files; then the commit."""
    store = dep.store
    ts = undo.ts
    staging: list[asyncio.Future[None]] = []
    written: set[str] = set()  # the tables it writes
    entries: list[WriteEntry] = []
    documents: list[DocumentWrite] = []
    files = 0
    emptied = [p.name for p in prepared] if mode in ("replace", "replace-all") else []
    if mode == "replace-all":
        emptied += [t.name for t in store.tables.values() if not t.is_system]
    for name in sorted(set(emptied)):
        table = store.tables.get(name)
        if table is None:
            continue
        kept = again.get(name, set())
        ids = list(table.docs)
        for start in range(0, len(ids), BULK_CHUNK):
            chunk_ids = ids[start : start + BULK_CHUNK]
            if kept:
                chunk_ids = [i for i in chunk_ids if i not in kept]
            deleted = store.delete_all(table, undo, chunk_ids)
            if deleted:
                written.add(name)
            entries += deleted
            # Written ahead like the documents (the writer serialises them).
            gone = [e.doc_id for e in deleted]
            staging.append(
                asyncio.ensure_future(dep.persistence.stage_deletions(key, table.number, gone))
            )
            await asyncio.sleep(0)
    for p in prepared:
        table = store.tables[p.name]
        kept = again.get(p.name, set())
        for start in range(0, len(p.docs), BULK_CHUNK):
            end = start + BULK_CHUNK
            (docs, _, chunk), (over, over_sizes) = _split(
                kept, p.docs[start:end], p.sizes[start:end], p.entries[start:end]
            )
            if over:
                entries += store.write_over(table, over, over_sizes, undo)
            entries += store.insert_heads(table, docs, chunk, ts)
            written.add(p.name)
            await asyncio.sleep(0)
    storage = store.tables["_storage"]
    stored = UndoRecord(ts)  # the _storage writes alone, for their write set
    for (_, row), blob in zip(plan.files.rows if plan.files else [], blobs, strict=False):
        doc_id = str(row.get("_id"))
        if doc_id in storage.docs or blob is None:
            continue
        store.write(storage, doc_id, dict(row), blob.size, undo)
        stored.touched.append((storage, doc_id))
        documents.append(DocumentWrite(ts, storage.number, doc_id, dict(row)))
        files += 1
    stored.new_keys = undo.new_keys
    entries += store.write_entries(stored)
    if files:
        written.add(storage.name)
    bulk = any(p.entries and not p.entries[0].keys for p in prepared)
    writes = WriteSet(entries, frozenset(written), bulk)
    for staged in staging:
        await staged
    moved = [key] if staging or any(p.docs for p in prepared) else []
    pending = PendingCommit(ts, undo, writes, documents, new_tables, staged=moved)
    durable = dep.committer.submit(pending)
    summary = ImportSummary({p.name: len(p.docs) for p in prepared}, files, ts)
    return durable, summary, undo.touched


def _split(
    again: set[str], docs: list[Any], sizes: list[int], entries: list[WriteEntry]
) -> tuple[tuple[list[Any], list[int], list[WriteEntry]], tuple[list[Any], list[int]]]:
    """A chunk's new documents (with their sizes and entries, if given) apart from those it
    writes again (ids in ``again``, with their sizes)."""
    if not again:
        return (docs, sizes, entries), ([], [])
    new = [i for i, d in enumerate(docs) if d["_id"] not in again]
    if len(new) == len(docs):
        return (docs, sizes, entries), ([], [])
    old = [i for i, d in enumerate(docs) if d["_id"] in again]
    fresh = [docs[i] for i in new], [sizes[i] for i in new], [entries[i] for i in new if entries]
    return fresh, ([docs[i] for i in old], [sizes[i] for i in old])


async def _keys_without(keys: list[bytes], ids: set[str]) -> list[bytes]:
    """``keys`` (sorted) without those of documents ``ids``, a chunk per loop turn."""
    out: list[bytes] = []
    for start in range(0, len(keys), 5 * BULK_CHUNK):
        out += [k for k in keys[start : start + 5 * BULK_CHUNK] if id_from_key(k) not in ids]
        await asyncio.sleep(0)
    return out


async def _store_blobs(files: Any, source: Source, files_zip: Path) -> list[Any]:
    blobs = files._blobs()
    stored = []
    with zipfile.ZipFile(files_zip) as archive:
        names = set(archive.namelist())
        for position, row in source.rows:
            entry = f"_storage/{row.get('_id')}"
            if entry not in names:
                raise ImportRefused(
                    "BadFile",
                    f"{source.where(position)}: the snapshot has no {entry} for this file.",
                )

            async def chunks(entry: str = entry) -> Any:
                with archive.open(entry) as f:
                    while chunk := f.read(1024 * 1024):
                        yield chunk

            stored.append(await blobs.write(chunks()))
    return stored

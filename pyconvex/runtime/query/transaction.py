"""One query or mutation's view of the store: snapshot reads, writes, read set and limits."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

from pyconvex.errors import InvalidValueError, LimitError, SchemaError
from pyconvex.runtime.store.index import Document, IndexSpec
from pyconvex.runtime.store.memory import Store, TableState, UndoRecord
from pyconvex.runtime.store.persistence import DocumentWrite
from pyconvex.runtime.store.read_set import ReadSet
from pyconvex.server.schema import SearchIndexDefinition
from pyconvex.values import check_document, decode_id
from pyconvex.values.id_minting import mint_id
from pyconvex.values.validators import Validator

_B32 = {c: i for i, c in enumerate("0123456789abcdefghjkmnpqrstvwxyz")}
#: What Convex's read-limit errors advise (its backend's words).
OVER_LIMIT_HELP = (
    "Consider using smaller limits in your queries, paginating your queries, or using indexed "
    "queries with a selective index range expressions."
)


def _mib(n: int) -> str:
    return f"{n / (1024 * 1024):g} MiB"


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-transaction limits, as Convex's (documents and bytes read and written)."""

    documents_read: int = 32_000
    bytes_read: int = 16 * 1024 * 1024
    documents_written: int = 16_000
    bytes_written: int = 16 * 1024 * 1024


class SchemaView(Protocol):
    """What a transaction needs to know of the schema."""

    def document_validator(self, table: str) -> Validator | None: ...

    def index_fields(self, table: str, index: str) -> tuple[str, ...] | None: ...

    def index_names(self, table: str) -> list[str]: ...

    def index_specs(self, table: str) -> list[IndexSpec]: ...

    def search_indexes(self, table: str) -> dict[str, SearchIndexDefinition]: ...

    def undeclared(self, table: str) -> list[str] | None: ...

    def declared_tables(self) -> list[str]: ...


def table_number_of(doc_id: str) -> int | None:
    """The table number of a well-formed id, read from its first byte (fast path)."""
    if len(doc_id) not in (31, 32):
        return None
    a = _B32.get(doc_id[0])
    b = _B32.get(doc_id[1])
    if a is None or b is None:
        return None
    first = (a << 3) | (b >> 2)
    if first < 0x80:
        return first
    try:
        return decode_id(doc_id)[0]
    except InvalidValueError:
        return None


@dataclass(slots=True)
class Transaction:
    """State of one running query or mutation.

    ``ts`` is the snapshot read timestamp (None: the head, for mutations). A writable
    transaction has ``undo`` (its commit timestamp and what it touched).
    """

    store: Store
    schema: SchemaView
    where: str
    ts: int | None
    undo: UndoRecord | None = None
    limits: Limits = field(default_factory=Limits)
    journal_in: str | None = None
    journal_out: str | None = None
    paginated: bool = False
    reads: ReadSet = field(default_factory=ReadSet)
    documents_read: int = 0
    bytes_read: int = 0
    documents_written: int = 0
    bytes_written: int = 0
    new_tables: list[tuple[int, str]] = field(default_factory=list)

    @property
    def writable(self) -> bool:
        return self.undo is not None

    # -- reads ---------------------------------------------------------------------------
    def table(self, name: str) -> TableState | None:
        return self.store.tables.get(name)

    def table_for_id(self, doc_id: str) -> TableState | None:
        number = table_number_of(doc_id)
        if number is None:
            return None
        return self.store.tables_by_number.get(number)

    def count_read(self, table: TableState, doc_id: str) -> None:
        self.documents_read += 1
        self.bytes_read += table.sizes.get(doc_id, 0)
        lim = self.limits
        if self.documents_read > lim.documents_read:
            raise LimitError(
                f"Too many documents read in a single function execution (limit: "
                f"{lim.documents_read}). {OVER_LIMIT_HELP}\n{self.where} read more than "
                f"{lim.documents_read} documents: read less with an index range (with_index) "
                "instead of filter, take(n), or paginate() instead of collect()."
            )
        if self.bytes_read > lim.bytes_read:
            raise LimitError(
                f"Too many bytes read in a single function execution (limit: {lim.bytes_read} "
                f"bytes). {OVER_LIMIT_HELP}\n{self.where} read more than "
                f"{_mib(lim.bytes_read)}: read fewer or smaller documents (paginate, take, index)."
            )

    def get(self, doc_id: str) -> Document | None:
        self.reads.add_id(doc_id)
        table = self.table_for_id(doc_id)
        if table is None:
            return None
        doc = table.get(doc_id, self.ts)
        if doc is not None:
            self.count_read(table, doc_id)
        return doc

    def scan(
        self, table_name: str, index: str, lo: bytes | None, hi: bytes | None, reverse: bool
    ) -> Iterator[tuple[bytes, Document]]:
        """Documents of an index range, in order; the caller records what it consumed."""
        table = self.store.tables.get(table_name)
        if table is None:
            return
        if index not in table.indexes:
            raise SchemaError(
                f"{self.where}: index {table_name}.{index} is not built yet (schema push pending)."
            )
        for key, doc in table.scan(index, lo, hi, reverse, self.ts):
            self.count_read(table, doc["_id"])
            yield key, doc

    def check_declared(self, table: str, doing: str) -> None:
        """Refuse a table the schema does not declare (only when there is a schema)."""
        close = self.schema.undeclared(table)
        if close is None:
            return
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        declared = ", ".join(self.schema.declared_tables())
        raise SchemaError(
            f"{self.where}: cannot {doing} table {table!r}: the schema does not declare it "
            f"(its tables: {declared}).{hint} Fix the name, or add the table to "
            "convex/schema.py."
        )

    # -- writes --------------------------------------------------------------------------
    def _writable(self, what: str) -> UndoRecord:
        if self.undo is None:
            raise SchemaError(f"{self.where}: {what} needs a mutation; queries are read-only.")
        return self.undo

    def ensure_table(self, name: str) -> TableState:
        undo = self._writable("creating a table")
        self.check_declared(name, "write to")
        t = self.store.tables.get(name)
        if t is None:
            t = self.store.create_table(name)
            self.store.set_indexes(t, self.schema.index_specs(name))
            undo.created_tables.append(name)
            self.new_tables.append((t.number, name))
        return t

    def new_id(self, table: TableState) -> str:
        return mint_id(table.number)

    def put(self, table: TableState, doc_id: str, doc: Document | None) -> None:
        """Write a validated document (or delete it) at this transaction's commit ts."""
        undo = self._writable("writing")
        size = 0
        if doc is not None:
            size = check_document(doc, table.name)
        self.documents_written += 1
        self.bytes_written += size
        lim = self.limits
        if self.documents_written > lim.documents_written:
            raise LimitError(
                f"Too many writes in a single function execution (limit: "
                f"{lim.documents_written})\n{self.where} wrote more than "
                f"{lim.documents_written} documents: split the work, schedule follow-up "
                "mutations for the rest."
            )
        if self.bytes_written > lim.bytes_written:
            raise LimitError(
                f"Too many bytes written in a single function execution (limit: "
                f"{_mib(lim.bytes_written)})\n{self.where} wrote more than "
                f"{_mib(lim.bytes_written)}: split the work into several mutations."
            )
        self.store.write(table, doc_id, doc, size, undo)

    def document_writes(self) -> list[DocumentWrite]:
        """The final version of every document this transaction touched, for persistence."""
        undo = self.undo
        if undo is None:
            return []
        return [
            DocumentWrite(undo.ts, t.number, doc_id, t.history[doc_id][-1][1])
            for t, doc_id in undo.touched
        ]

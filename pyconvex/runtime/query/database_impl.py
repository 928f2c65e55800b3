"""``ctx.db``: the database reader (queries) and writer (mutations) over a transaction."""

from __future__ import annotations

import time
from typing import Any

from pyconvex.errors import InvalidValueError, SchemaError, ValidationError
from pyconvex.runtime.query.query_impl import Query, copy_doc
from pyconvex.runtime.query.transaction import Transaction
from pyconvex.runtime.store.index import Document
from pyconvex.runtime.store.memory import TableState
from pyconvex.values import UNSET, decode_id, to_value
from pyconvex.values.validators import Validator

SYSTEM_FIELDS = ("_id", "_creationTime")


class IdResolver:
    __slots__ = ("tx",)

    def __init__(self, tx: Transaction) -> None:
        self.tx = tx

    def table_for_id(self, id_str: str) -> str | None:
        t = self.tx.table_for_id(id_str)
        return None if t is None else t.name


class SystemReader:
    """``ctx.db.system``: read-only access to system tables (``_storage``,
    ``_scheduled_functions``)."""

    __slots__ = ("_tx",)

    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    def query(self, table: str) -> Query:
        if not table.startswith("_"):
            raise SchemaError(
                f"{self._tx.where}: db.system.query() reads system tables (_storage, "
                f"_scheduled_functions); use db.query({table!r}) for user tables."
            )
        return Query(self._tx, table)

    async def get(self, table_or_id: str, doc_id: str | None = None) -> Document | None:
        """A system document by id: ``get(id)`` or, as Convex spells it now,
        ``get("_storage", id)``."""
        if doc_id is None:
            doc_id = table_or_id
        else:
            table = self._tx.table_for_id(doc_id) if isinstance(doc_id, str) else None
            if table is not None and table.name != table_or_id:
                return None
        doc = self._tx.get(doc_id)
        return None if doc is None else copy_doc(doc)


class DatabaseReader:
    """``ctx.db`` in a query: ``get``, ``query``, ``normalize_id``, ``system``."""

    __slots__ = ("_tx", "system")

    def __init__(self, tx: Transaction) -> None:
        self._tx = tx
        self.system = SystemReader(tx)

    async def get(self, doc_id: str) -> Document | None:
        """The document with this id, or None::

        msg = await ctx.db.get(message_id)
        """
        if type(doc_id) is not str:
            raise InvalidValueError(
                f"{self._tx.where}: db.get() takes a document id string, got "
                f"{type(doc_id).__name__}."
            )
        doc = self._tx.get(doc_id)
        if doc is None:
            self._check_id(doc_id)
            return None
        table = self._tx.table_for_id(doc_id)
        if table is not None and table.is_system:
            raise SchemaError(
                f"{self._tx.where}: {doc_id} is a system document; read it with db.system.get()."
            )
        return copy_doc(doc)

    def __getattr__(self, name: str) -> Any:
        if name in ("insert", "patch", "replace", "delete"):
            raise SchemaError(
                f"{self._tx.where}: ctx.db.{name}() is not available in a query; queries are "
                "read-only. Write from a @mutation (call it from an action with ctx.run_mutation)."
            )
        raise AttributeError(f"ctx.db has no attribute {name!r}")

    def _check_id(self, doc_id: str) -> None:
        try:
            decode_id(doc_id)
        except InvalidValueError as e:
            raise InvalidValueError(f"{self._tx.where}: {e}") from None

    def query(self, table: str) -> Query:
        """Start a query over ``table`` (by creation time unless ``with_index`` says otherwise)."""
        if not isinstance(table, str) or table.startswith("_"):
            raise SchemaError(
                f"{self._tx.where}: db.query() takes a user table name, got {table!r}"
                + (" (system tables: db.system.query)" if isinstance(table, str) else "")
            )
        if table not in self._tx.store.tables:
            # Reading a table that neither the schema nor the data knows is a misspelling.
            self._tx.check_declared(table, "read")
        return Query(self._tx, table)

    def normalize_id(self, table: str, id_str: str) -> str | None:
        """``id_str`` if it is a valid id of ``table``, else None."""
        if not isinstance(id_str, str):
            return None
        try:
            number, _ = decode_id(id_str)
        except InvalidValueError:
            return None
        t = self._tx.store.tables_by_number.get(number)
        return id_str if t is not None and t.name == table else None


class DatabaseWriter(DatabaseReader):
    """``ctx.db`` in a mutation: the reader plus ``insert``, ``patch``, ``replace``, ``delete``."""

    __slots__ = ()

    def _validate(self, table: str, doc: dict[str, Any], what: str) -> dict[str, Any]:
        tx = self._tx
        validator: Validator | None = tx.schema.document_validator(table)
        if validator is None:
            value = to_value(doc)
            if not isinstance(value, dict):
                raise InvalidValueError(
                    f"{tx.where}: {what} into {table!r}: a document must be an object."
                )
            return value
        try:
            out = validator.validate(doc, "", IdResolver(tx))
        except ValidationError as e:
            # Convex's text first, then pyconvex's explanation naming the call and the write.
            message = (
                f'Failed to insert or update a document in table "{table}" because it does not '
                f"match the schema: {e.convex}\n{tx.where}: {what} into {table!r}: {e.detail}"
            )
            raise ValidationError(message, e.path, convex=e.convex, detail=e.detail) from None
        except (InvalidValueError, ValueError) as e:
            raise type(e)(f"{tx.where}: {what} into {table!r}: {e}") from None
        if not isinstance(out, dict):
            raise InvalidValueError(
                f"{tx.where}: {what} into {table!r}: a document must be an object."
            )
        return out

    def _user_table(self, table: str, op: str) -> TableState:
        if not isinstance(table, str) or table.startswith("_") or not table:
            raise SchemaError(
                f"{self._tx.where}: db.{op}() writes user tables; {table!r} is not one "
                "(system tables are written by pyconvex itself)."
            )
        return self._tx.ensure_table(table)

    def _doc_table(self, doc_id: str, op: str) -> tuple[TableState, Document]:
        tx = self._tx
        if type(doc_id) is not str:
            raise InvalidValueError(
                f"{tx.where}: db.{op}() takes a document id, got {type(doc_id).__name__}."
            )
        table = tx.table_for_id(doc_id)
        doc = tx.get(doc_id)
        if doc is None or table is None:
            self._check_id(doc_id)
            raise InvalidValueError(
                f"{tx.where}: db.{op}({doc_id!r}): no such document (it was deleted or never "
                "existed)."
            )
        if table.is_system:
            raise SchemaError(f"{tx.where}: db.{op}() cannot change system document {doc_id}.")
        return table, doc

    def _reject_system_fields(self, doc: dict[str, Any], op: str, target: str) -> None:
        for k in doc:
            if isinstance(k, str) and k.startswith("_"):
                raise InvalidValueError(
                    f"{self._tx.where}: db.{op}({target!r}): field {k!r} is a system field "
                    "(starts with '_'); pyconvex sets _id and _creationTime itself."
                )

    async def insert(self, table: str, doc: dict[str, Any]) -> str:
        """Insert a document; returns its new id::

        msg_id = await ctx.db.insert("messages", {"body": "hi"})
        """
        tx = self._tx
        if not isinstance(doc, dict):
            raise InvalidValueError(
                f"{tx.where}: db.insert({table!r}, ...) takes a dict, got {type(doc).__name__}."
            )
        t = self._user_table(table, "insert")
        self._reject_system_fields(doc, "insert", table)
        value = self._validate(table, doc, "insert")
        doc_id = tx.new_id(t)
        value["_id"] = doc_id
        value["_creationTime"] = tx.store.next_creation_time(_now_ms())
        tx.put(t, doc_id, value)
        return doc_id

    async def patch(self, doc_id: str, fields: dict[str, Any]) -> None:
        """Shallow-merge ``fields`` into a document; a field set to ``UNSET`` is removed."""
        tx = self._tx
        if not isinstance(fields, dict):
            raise InvalidValueError(
                f"{tx.where}: db.patch() takes a dict of fields, got {type(fields).__name__}."
            )
        table, current = self._doc_table(doc_id, "patch")
        new = {k: v for k, v in current.items() if k not in SYSTEM_FIELDS}
        for k, v in fields.items():
            if k in SYSTEM_FIELDS:
                if v is not UNSET and v != current[k]:
                    raise InvalidValueError(
                        f"{tx.where}: db.patch({doc_id!r}) cannot change system field {k!r}."
                    )
                continue
            if v is UNSET:
                new.pop(k, None)
            else:
                new[k] = v
        self._write_existing(table, doc_id, current, new, "patch")

    async def replace(self, doc_id: str, doc: dict[str, Any]) -> None:
        """Replace a document's fields entirely (``_id`` and ``_creationTime`` stay)."""
        tx = self._tx
        if not isinstance(doc, dict):
            raise InvalidValueError(
                f"{tx.where}: db.replace() takes a dict, got {type(doc).__name__}."
            )
        table, current = self._doc_table(doc_id, "replace")
        new = {}
        for k, v in doc.items():
            if k in SYSTEM_FIELDS:
                if v != current[k]:
                    raise InvalidValueError(
                        f"{tx.where}: db.replace({doc_id!r}) cannot change system field {k!r}."
                    )
                continue
            new[k] = v
        self._write_existing(table, doc_id, current, new, "replace")

    def _write_existing(
        self, table: TableState, doc_id: str, current: Document, new: dict[str, Any], op: str
    ) -> None:
        self._reject_system_fields(new, op, doc_id)
        value = self._validate(table.name, new, op)
        value["_id"] = doc_id
        value["_creationTime"] = current["_creationTime"]
        self._tx.put(table, doc_id, value)

    async def delete(self, doc_id: str) -> None:
        """Delete a document."""
        table, _ = self._doc_table(doc_id, "delete")
        self._tx.put(table, doc_id, None)


def _now_ms() -> float:
    # time.time_ns is the sandbox's proxy: frozen at the transaction's start.
    return time.time_ns() / 1e6

"""Deployment environment variables: set with ``pyconvex env``, read by functions as ``env``.

They live in the system table ``_environment_variables`` (one document ``{name, value}`` per
variable), written through a transaction like any mutation: durable before the command returns,
and reactive — a query that read a variable re-runs when it changes. No restart needed.

Inside a query or mutation a read is part of the transaction (it joins the read set); in an
action it reads the latest durable values.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from pyconvex.errors import ConvexError, PyconvexError
from pyconvex.runtime.store.memory import BY_CREATION_TIME, Store
from pyconvex.server.functions import FunctionDefinition, internal_mutation
from pyconvex.values.validators import v

if TYPE_CHECKING:
    # Not at run time: ``pyconvex`` exports ``env``, and transaction.py loads DuckDB.
    from pyconvex.runtime.query.transaction import Transaction

ENV_TABLE = "_environment_variables"
MAX_NAME_LENGTH = 40
MAX_VALUE_BYTES = 8 * 1024
MAX_VARIABLES = 1000
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")

#: What ``env`` reads from: the running query's or mutation's transaction, or (in an action)
#: the deployment's store. Set by the deployment around each execution.
ENV_SOURCE: ContextVar[Transaction | Store | None] = ContextVar("pyconvex_env", default=None)


#: Variables every deployment has (its URLs, once it serves), by store; a variable set with
#: ``pyconvex env set`` under the same name wins.
_BUILTIN: WeakKeyDictionary[Store, dict[str, str]] = WeakKeyDictionary()


def set_builtin_variables(store: Store, variables: dict[str, str]) -> None:
    """Give the deployment of ``store`` built-in variables (``CONVEX_SITE_URL``, ...)."""
    _BUILTIN[store] = dict(variables)


class EnvVarError(PyconvexError, ValueError):
    """An environment variable name or value is not acceptable (the message says why)."""


def check_name(name: object) -> str:
    """Return ``name`` if it can name an environment variable, else raise :class:`EnvVarError`.

    >>> check_name("OPENAI_API_KEY")
    'OPENAI_API_KEY'
    """
    if not isinstance(name, str) or not name:
        raise EnvVarError(f"An environment variable name must be a non-empty string, got {name!r}.")
    if len(name) > MAX_NAME_LENGTH:
        raise EnvVarError(
            f"Environment variable name {name[:50]!r}... is {len(name)} characters long; "
            f"the limit is {MAX_NAME_LENGTH}."
        )
    if not _NAME.fullmatch(name):
        raise EnvVarError(
            f"Invalid environment variable name {name!r}: use letters, digits and '_', starting "
            "with a letter (e.g. OPENAI_API_KEY)."
        )
    return name


def check_value(name: str, value: object) -> str:
    """Return ``value`` if it can be the value of ``name``, else raise :class:`EnvVarError`."""
    if not isinstance(value, str):
        raise EnvVarError(
            f"The value of environment variable {name} must be a string, got "
            f"{type(value).__name__}."
        )
    size = len(value.encode("utf-8"))
    if size > MAX_VALUE_BYTES:
        raise EnvVarError(
            f"The value of environment variable {name} is {size} bytes; the limit is "
            f"{MAX_VALUE_BYTES} bytes (8 KiB). Store large data in a table or file storage."
        )
    return value


def read_variables(source: Transaction | Store) -> dict[str, str]:
    """All variables as ``{name: value}``: through ``source``'s read set when it is a
    transaction (so a change re-runs the query), else at the store's latest durable commit."""
    if not isinstance(source, Store):
        # The whole table: variables change rarely, and a table that does not exist yet must
        # still invalidate the reader when its first variable is set.
        source.reads.add_range(ENV_TABLE, BY_CREATION_TIME, None, None)
        if source.table(ENV_TABLE) is None:
            return {}
        docs = source.scan(ENV_TABLE, BY_CREATION_TIME, None, None, False)
    else:
        table = source.tables.get(ENV_TABLE)
        if table is None:
            return {}
        docs = table.scan(BY_CREATION_TIME, None, None, False, source.durable_ts)
    return {doc["name"]: doc["value"] for _, doc in docs}


class Environment(Mapping[str, str]):
    """The deployment's environment variables, read-only (``pyconvex env set`` writes them).

    Import it and read it inside a query, mutation or action::

        from pyconvex import action, env

        @action
        async def summarize(ctx, text: str) -> str:
            api_key = env["OPENAI_API_KEY"]           # KeyError (with a hint) when unset
            model = env.get("OPENAI_MODEL", "gpt-4o-mini")
            ...

    In a query or mutation, reading a variable is part of the transaction: a subscribed query
    re-runs when the variable changes. In an action it reads the latest values.
    """

    def _variables(self) -> dict[str, str]:
        source = ENV_SOURCE.get()
        if source is None:
            raise PyconvexError(
                "pyconvex.env is readable only while a query, mutation or action runs (the "
                "variables belong to the deployment); read it inside the handler, not at import "
                "time."
            )
        store = source if isinstance(source, Store) else source.store
        builtin = _BUILTIN.get(store)
        variables = read_variables(source)
        return variables if builtin is None else {**builtin, **variables}

    def __getitem__(self, name: str) -> str:
        variables = self._variables()
        try:
            return variables[name]
        except KeyError:
            known = ", ".join(sorted(variables)) or "none"
            raise KeyError(
                f"No environment variable {name!r} in this deployment (set: {known}). Set it "
                f"with `pyconvex env set {name} <value>`, or use env.get({name!r}, default)."
            ) from None

    def get(self, name: str, default: Any = None) -> Any:
        """The variable's value, or ``default`` when it is not set."""
        return self._variables().get(name, default)

    def __contains__(self, name: object) -> bool:
        return name in self._variables()

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._variables()))

    def __len__(self) -> int:
        return len(self._variables())

    def __repr__(self) -> str:
        # Values may be secrets: never in a repr.
        return "<pyconvex.env (deployment environment variables)>"


env = Environment()


# -- writing: a built-in internal mutation, run with the admin key --------------------------

SET_PATH = "_system/env:set"


async def _set(ctx: Any, name: str, value: str | None) -> str:
    """Set (``value`` a string) or remove (``value`` None) one variable; returns what happened:
    "created", "updated", "unchanged", "removed" or "absent"."""
    try:
        check_name(name)
        if value is not None:
            check_value(name, value)
    except EnvVarError as e:
        raise ConvexError(str(e)) from None
    tx: Transaction = ctx.db._tx
    current = {doc["name"]: doc for doc in _documents(tx)}
    existing = current.get(name)
    if value is None:
        if existing is None:
            return "absent"
        table = tx.table(ENV_TABLE)
        assert table is not None
        tx.put(table, existing["_id"], None)
        return "removed"
    if existing is not None and existing["value"] == value:
        return "unchanged"
    if existing is None and len(current) >= MAX_VARIABLES:
        raise ConvexError(
            f"This deployment already has {MAX_VARIABLES} environment variables, the limit; "
            "remove some with `pyconvex env remove NAME`."
        )
    table = tx.ensure_table(ENV_TABLE)
    if existing is not None:
        tx.put(table, existing["_id"], {**existing, "value": value})
        return "updated"
    doc_id = tx.new_id(table)
    # time.time_ns is the sandbox's frozen clock here: the transaction's start.
    created = tx.store.next_creation_time(time.time_ns() / 1e6)
    tx.put(table, doc_id, {"_id": doc_id, "_creationTime": created, "name": name, "value": value})
    return "created"


def _documents(tx: Transaction) -> list[dict[str, Any]]:
    tx.reads.add_range(ENV_TABLE, BY_CREATION_TIME, None, None)
    if tx.table(ENV_TABLE) is None:
        return []
    return [doc for _, doc in tx.scan(ENV_TABLE, BY_CREATION_TIME, None, None, False)]


_set_definition: FunctionDefinition = internal_mutation(
    args={"name": v.string(), "value": v.union(v.string(), v.null())}
)(_set)
_set_definition.path = SET_PATH

#: Built-in functions the deployment resolves when no user function has the path (internal:
#: only the admin key reaches them).
SYSTEM_FUNCTIONS: dict[str, FunctionDefinition] = {SET_PATH: _set_definition}

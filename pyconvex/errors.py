"""The errors pyconvex raises, in one small hierarchy.

Every message names the thing at fault (function, table, field path, document ``_id``), says
what was expected and what came, and what to do next.
"""

from __future__ import annotations

from typing import Any


class PyconvexError(Exception):
    """Base class of every error pyconvex defines, :class:`ConvexError` included.

    Catch it to handle anything pyconvex raised (a function's ``ConvexError`` too)::

        except PyconvexError as e:
            print(e)
    """


class ConvexError(PyconvexError):
    """An error whose ``data`` reaches the client (Convex's ``ConvexError``).

    Raise it from a query, mutation or action to send structured data to the caller::

        raise ConvexError({"code": "EMPTY_BODY"})

    Any other exception reaches the client as a generic server error.
    """

    def __init__(self, data: Any = None) -> None:
        self.data = data
        super().__init__(data if isinstance(data, str) else "ConvexError")


class InvalidValueError(PyconvexError, ValueError):
    """A Python object is not a valid Convex value (wrong type, bad field name, over a limit)."""

    def __init__(self, message: str, path: str = "") -> None:
        self.path = path
        where = f" at {path}" if path else ""
        super().__init__(f"{message}{where}" if path else message)


class ValidationError(PyconvexError, ValueError):
    """A value does not match its validator.

    Its text is Convex's (``convex``: "Value does not match validator." with the path, the
    value and the validator) followed by pyconvex's explanation (``detail``)::

        except ValidationError as e:
            print(e.path, e.convex, e.detail)
    """

    def __init__(self, message: str, path: str = "", *, convex: str = "", detail: str = "") -> None:
        self.path = path
        self.convex = convex
        self.detail = detail or message
        super().__init__(message)


class SchemaError(PyconvexError):
    """A schema definition or a write against the schema is invalid."""


class LimitError(PyconvexError):
    """A transaction went over one of Convex's per-transaction limits."""


class InvalidCursorError(PyconvexError):
    """A pagination cursor is malformed or belongs to another query (message says InvalidCursor)."""


class TransactionIOError(PyconvexError):
    """A query or mutation awaited something other than a pyconvex call (I/O belongs in actions)."""


class StorageError(PyconvexError):
    """The durable store (DuckDB) failed or holds data pyconvex cannot read."""

"""Opaque pagination cursors: a position in one index of one table.

A cursor names its table and index so that a cursor from another query is refused with an
``InvalidCursor`` error (the npm client then restarts pagination from the first page). The
"end" cursor marks the end of the range: a page ending there grows when rows are appended.
"""

from __future__ import annotations

import base64

from pyconvex.errors import InvalidCursorError

_VERSION = b"1"
END = "end"


def encode_cursor(table: str, index: str, key: bytes | None) -> str:
    """``key`` None: the end of the range."""
    payload = _VERSION + table.encode() + b"\x00" + index.encode() + b"\x00"
    payload += b"e" if key is None else b"k" + key
    return base64.urlsafe_b64encode(payload).decode("ascii").rstrip("=")


def decode_cursor(cursor: str, table: str, index: str, where: str) -> bytes | None:
    """The key a cursor points at (None: the end). Raises InvalidCursorError."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        version, rest = raw[:1], raw[1:]
        t, i, pos = rest.split(b"\x00", 2)
        if version != _VERSION or pos[:1] not in (b"e", b"k"):
            raise ValueError("unknown cursor format")
    except (ValueError, TypeError) as e:
        raise InvalidCursorError(
            f"InvalidCursor: {where} got a cursor that pyconvex did not make ({e}). Pass null "
            "for the first page and then the continueCursor of the previous page."
        ) from None
    if t.decode() != table or i.decode() != index:
        raise InvalidCursorError(
            f"InvalidCursor: {where} got a cursor for {t.decode()}.{i.decode()}, but this query "
            f"paginates {table}.{index}. Start again from cursor null."
        )
    return None if pos[:1] == b"e" else pos[1:]

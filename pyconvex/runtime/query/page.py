"""One page of an index range for ``paginate()``, as Convex's ``queryPage`` reads it.

Besides the rows, a page reports where it could be cut in two and whether it should be:

* ``split_key``: the key of the middle row the page consumed (filtered-out rows count, as in
  Convex), when it consumed more than two rows. ``usePaginatedQuery`` subscribes to
  ``(cursor, split]`` and ``(split, end]`` in place of a page that grew.
* ``status``: ``"SplitRequired"`` when ``maximumRowsRead`` / ``maximumBytesRead`` stopped the
  page before it was full (it is incomplete: the client hides it until it has split it);
  ``"SplitRecommended"`` when the page read more than 3/4 of a read limit (the one asked for,
  or the transaction's) or holds more than 3/4 of the 8192 items an array may have.

A page bounded by an end cursor (a reactive re-run, or one half of a split) reads its whole
range: the limits then only recommend a split, as in Convex.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from pyconvex.errors import InvalidCursorError
from pyconvex.runtime.query.transaction import Transaction
from pyconvex.runtime.store.index import Document

PageStatus = Literal["SplitRecommended", "SplitRequired"]

#: A page becomes an array, which holds at most 8192 items: past 3/4 of that, split.
SOFT_MAX_PAGE_LEN = 8192 * 3 // 4

_OPTIONS = ("numItems", "cursor", "endCursor", "maximumRowsRead", "maximumBytesRead", "id")


@dataclass(frozen=True, slots=True)
class PageOptions:
    """Convex's ``paginationOpts``, checked."""

    num_items: int
    cursor: str | None
    end_cursor: str | None
    maximum_rows_read: int | None
    maximum_bytes_read: int | None


def parse_options(opts: Any, where: str, max_page_size: int) -> PageOptions:
    """Check ``paginationOpts`` (camelCase as clients send it; ``num_items`` and
    ``end_cursor`` also accepted), with Convex's error texts."""
    if not isinstance(opts, dict):
        raise ValueError(
            f"{where}: paginate() takes {{'numItems': n, 'cursor': None | str}}, got "
            f"{type(opts).__name__}."
        )
    unknown = set(opts) - {*_OPTIONS, "num_items", "end_cursor"}
    if unknown:
        raise ValueError(
            f"{where}: unknown pagination option(s) {sorted(unknown)}; allowed: "
            f"{', '.join(_OPTIONS)}."
        )
    n = opts.get("numItems", opts.get("num_items"))
    if isinstance(n, bool) or not isinstance(n, int | float) or n != n or n < 0:
        raise ValueError(
            f"`options.numItems` must be a positive number. Received `{_js(n)}`. ({where}: "
            "pass paginate({'numItems': n, 'cursor': None | str}).)"
        )
    if n < 1:
        raise ValueError(
            f"Must request at least 1 document while paginating ({where}: numItems was {_js(n)})."
        )
    if n > max_page_size:
        raise ValueError(
            f"Requested too many items: {int(n)} ({where}: a page holds at most "
            f"{max_page_size}; ask for fewer and load more pages)."
        )
    cursor = opts.get("cursor")
    end = opts.get("endCursor", opts.get("end_cursor"))
    for name, c in (("cursor", cursor), ("endCursor", end)):
        if c is not None and not isinstance(c, str):
            raise InvalidCursorError(f"InvalidCursor: {where}: {name} must be a string or null.")
    limits = []
    for name in ("maximumRowsRead", "maximumBytesRead"):
        value = opts.get(name)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int | float) or value != value
        ):
            raise ValueError(f"{where}: {name} must be a number, got {value!r}.")
        if value is not None and value < 1:
            raise ValueError(
                "maximumRowsRead and maximumBytesRead must be greater than 0 "
                f"({where}: {name} was {_js(value)})."
            )
        limits.append(None if value is None else int(value))
    return PageOptions(int(n), cursor, end, limits[0], limits[1])


def _js(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "undefined" if value is None else str(value)


@dataclass(slots=True)
class PageScan:
    """What one page read: the rows kept, where to split, whether the range ended."""

    pairs: list[tuple[bytes, Document]]
    split_key: bytes | None
    last_key: bytes | None
    exhausted: bool
    status: PageStatus | None


def scan_page(
    tx: Transaction,
    table: str,
    index: str,
    lo: bytes,
    hi: bytes | None,
    reverse: bool,
    keep: Callable[[Document], bool] | None,
    limit: int | None,
    opts: PageOptions,
) -> PageScan:
    """Read ``[lo, hi)`` in order until ``limit`` rows were kept (None: the whole range, for
    a page with an end cursor), or a read limit of ``opts`` stopped it; record what was
    consumed in the read set."""
    enforce = limit is not None
    max_rows = opts.maximum_rows_read if enforce else None
    max_bytes = opts.maximum_bytes_read if enforce else None
    bytes_before = tx.bytes_read
    pairs: list[tuple[bytes, Document]] = []
    keys: list[bytes] = []
    exhausted = True
    stopped = False
    peeked: bytes | None = None
    it: Iterator[tuple[bytes, Document]] = tx.scan(table, index, lo, hi, reverse)
    for key, doc in it:
        keys.append(key)
        if keep is None or keep(doc):
            pairs.append((key, doc))
            if limit is not None and len(pairs) >= limit:
                exhausted = False
                break
        if (max_rows is not None and len(keys) >= max_rows) or (
            max_bytes is not None and tx.bytes_read - bytes_before >= max_bytes
        ):
            # Convex fails the next read; the page so far is returned, marked incomplete.
            # Unlike Convex, look one row ahead: a range that ends here is simply done.
            ahead = next(it, None)
            if ahead is not None:
                peeked = ahead[0]
                exhausted = False
                stopped = True
            break
    last = keys[-1] if keys else None
    read_to = last if peeked is None else peeked  # the row looked at decides isDone too
    if exhausted or read_to is None:
        tx.reads.add_range(table, index, lo, hi)
    elif reverse:
        tx.reads.add_range(table, index, read_to, hi)
    else:
        tx.reads.add_range(table, index, lo, read_to + b"\x00")
    status: PageStatus | None = None
    if stopped:
        status = "SplitRequired"
    elif _approaching_limit(tx, opts, len(keys), tx.bytes_read - bytes_before) or (
        len(pairs) > SOFT_MAX_PAGE_LEN
    ):
        status = "SplitRecommended"
    split = keys[len(keys) // 2] if len(keys) > 2 else None
    return PageScan(pairs, split, last, exhausted, status)


def _approaching_limit(tx: Transaction, opts: PageOptions, rows: int, size: int) -> bool:
    """Past 3/4 of the rows or bytes a page may read (asked for, capped by the transaction's
    limits), as Convex's ``is_approaching_data_limit``."""
    limits = tx.limits
    rows_cap = min(opts.maximum_rows_read or limits.documents_read, limits.documents_read)
    bytes_cap = min(opts.maximum_bytes_read or limits.bytes_read, limits.bytes_read)
    return rows > rows_cap * 3 // 4 or size > bytes_cap * 3 // 4

"""What running a function returns: the seam between the engine and the server.

The sync protocol and the HTTP API turn a :class:`FunctionResult` into wire messages; the
engine produces them. Nothing here knows about WebSockets or DuckDB.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from pyconvex.runtime.store.read_set import ReadSet

FunctionKind = Literal["query", "mutation", "action", "http_action"]


@dataclass(slots=True)
class FunctionFailure:
    """Why a function failed, as the client should see it.

    ``data`` is the ConvexError payload (a Convex value) when ``is_convex_error`` is true;
    for any other exception it is None and ``message`` is a generic server-error text.
    """

    message: str
    is_convex_error: bool = False
    data: Any = None


@dataclass(slots=True)
class FunctionResult:
    """The outcome of one function call.

    ``value`` is a Convex value (valid only when ``failure`` is None). ``ts`` is the snapshot
    timestamp a query read at, or the commit timestamp of a mutation (None for actions and for
    mutations that failed). ``read_set`` is set for queries: what they read, to intersect with
    later commits. ``log_lines`` are already formatted ("[LOG] 'hello'").
    """

    value: Any = None
    failure: FunctionFailure | None = None
    log_lines: list[str] = field(default_factory=list)
    ts: int | None = None
    read_set: ReadSet | None = None
    journal: str | None = None

    @property
    def ok(self) -> bool:
        return self.failure is None

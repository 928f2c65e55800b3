"""A query's result as the client holds it: a value, or the error the function raised, with
the log lines of the run that produced it.

    >>> r = QueryResult.of_value([1.0, 2.0], [1, 2])
    >>> r.ok, r.get()
    (True, [1.0, 2.0])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pyconvex.client.errors import ConvexError, FunctionError
from pyconvex.protocol.client_side import FunctionResponse, QueryFailed
from pyconvex.values import decode_value


@dataclass(frozen=True, slots=True, eq=False)
class QueryResult:
    """One result: ``value`` when ``error`` is None, else ``error`` (a :class:`ConvexError`
    or :class:`FunctionError`). ``raw`` is the value as Convex JSON: two results are the same
    exactly when their ``raw`` are equal."""

    value: Any
    error: FunctionError | None
    log_lines: tuple[str, ...]
    raw: Any

    @property
    def ok(self) -> bool:
        return self.error is None

    def get(self) -> Any:
        """The value, or raise the error."""
        if self.error is not None:
            raise self.error
        return self.value

    @classmethod
    def of_value(cls, value: Any, raw: Any, log_lines: tuple[str, ...] = ()) -> QueryResult:
        return cls(value, None, log_lines, raw)

    @classmethod
    def of_failure(cls, path: str, failed: QueryFailed) -> QueryResult:
        error = function_error(
            path, failed.error_message, failed.error_data, failed.has_error_data, failed.log_lines
        )
        raw = ["$error", failed.error_message, failed.error_data, failed.has_error_data]
        return cls(None, error, failed.log_lines, raw)

    def same_as(self, other: QueryResult | None) -> bool:
        return other is not None and (other is self or other.raw == self.raw)


def function_error(
    path: str, message: str, error_data: Any, has_error_data: bool, log_lines: tuple[str, ...]
) -> FunctionError:
    """The exception for a failed call: a :class:`ConvexError` with its data decoded when the
    deployment sent ``errorData``, else a :class:`FunctionError`."""
    if has_error_data:
        try:
            data = decode_value(error_data)
        except ValueError:
            data = error_data
        return ConvexError(path, message, data, log_lines)
    return FunctionError(path, message, log_lines)


def response_error(path: str, response: FunctionResponse) -> FunctionError:
    return function_error(
        path,
        str(response.result),
        response.error_data,
        response.has_error_data,
        response.log_lines,
    )

"""What a call's result looks like on the wire: Convex args decoded from a client's JSON, and
a query's result serialised as the body of a QueryUpdated / QueryFailed modification."""

from __future__ import annotations

import logging
from typing import Any

from pyconvex.protocol import query_result_body
from pyconvex.runtime.functions.results import FunctionFailure, FunctionResult
from pyconvex.values import Value, decode_value, encode_value, value_type_name

_log = logging.getLogger("pyconvex.sync")

SERVER_ERROR = "Server Error"


def internal_error() -> FunctionFailure:
    """What a client sees when pyconvex itself failed running a call (logged in full)."""
    return FunctionFailure.server_error(
        "InternalError: pyconvex failed running this call; the server log has the details."
    )


def decode_args(raw: Any) -> dict[str, Value]:
    """Function args from the wire: ``[{...}]`` (positional form) or ``{...}``, Convex-decoded.

    Raises ``ValueError`` naming what was wrong (never anything else: bad input from a client
    must not break the socket or request that carried it).
    """
    if isinstance(raw, list):
        if len(raw) == 0:
            return {}
        if len(raw) != 1:
            raise ValueError(
                f"Function args must be an object or an array holding one object; got an array "
                f"of {len(raw)} items."
            )
        raw = raw[0]
    if not isinstance(raw, dict):
        raise ValueError(
            f"Function args must be an object or an array holding one object; got "
            f"{_json_kind(raw)}."
        )
    value = decode_value(raw)
    if not isinstance(value, dict):
        # {"$integer": ...}, {"$bytes": ...}, {"$float": ...}: a JSON object, but not an
        # object value.
        key = next(iter(raw))
        raise ValueError(
            f"Function args must be an object; got a Convex {value_type_name(value)} value "
            f'({{"{key}": ...}} is how Convex JSON writes that type). Pass the arguments as an '
            'object of named fields, e.g. {"n": {"$integer": ...}}.'
        )
    return value


def _json_kind(raw: Any) -> str:
    if raw is None:
        return "null"
    if isinstance(raw, bool):
        return "a boolean"
    if isinstance(raw, (int, float)):
        return "a number"
    if isinstance(raw, str):
        return "a string"
    return "an array" if isinstance(raw, list) else type(raw).__name__


def failure_body(failure: FunctionFailure, log_lines: list[str], journal: str | None) -> str:
    """The serialised QueryFailed body for a failure (errorData only for ConvexError)."""
    if failure.is_convex_error:
        try:
            data = encode_value(failure.data)
        except ValueError:
            data = None
        return query_result_body(
            None,
            log_lines,
            journal,
            error_message=failure.message,
            error_data=data,
            has_error_data=True,
        )
    return query_result_body(None, log_lines, journal, error_message=failure.message)


def result_body(path: str, result: FunctionResult, journal: str | None) -> str:
    if result.failure is not None:
        return failure_body(result.failure, result.log_lines, journal)
    try:
        return query_result_body(encode_value(result.value), result.log_lines, journal)
    except ValueError as exc:
        _log.error("query %s returned a value that is not a Convex value: %s", path, exc)
        return query_result_body(
            None,
            result.log_lines,
            journal,
            error_message=FunctionFailure.server_error(
                f"{path} returned an invalid value: {exc}"
            ).message,
        )

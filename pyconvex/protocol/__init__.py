"""The WebSocket sync protocol's messages (PROTOCOL.md §1): parsing and serialising; and the
admin log stream's entries (``GET /api/_pyconvex/logs``, one :class:`LogEntry` per line).

Client frames are parsed into small frozen dataclasses; anything malformed raises
:class:`ProtocolError`, which the session turns into a ``FatalError``. Server messages are
built as JSON text directly; a Transition is built as byte pieces around each query result's
bytes, encoded once per result however many sockets it goes to (see :func:`transition_parts`).

Timestamps travel as u64 little-endian in padded standard base64::

    >>> encode_ts(0)
    'AAAAAAAAAAA='
    >>> decode_ts(encode_ts(1_700_000_000_000_000_000))
    1700000000000000000
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, TypeAlias

from pyconvex.errors import InvalidValueError, PyconvexError
from pyconvex.values.encoding import check_json_nesting

MAX_U64 = 2**64 - 1
_log = logging.getLogger("pyconvex.functions")


class ProtocolError(PyconvexError):
    """A client frame breaks the sync protocol (malformed, or sent out of order)."""


# ---------------------------------------------------------------------------------------------
# Timestamps


def encode_ts(ts: int) -> str:
    """A u64 timestamp as Convex sends it: 8 bytes little-endian, standard base64 with padding."""
    # The same few timestamps go into every Transition of a commit: remember the last one.
    global _last_ts
    last_ts, last_text = _last_ts
    if ts == last_ts:
        return last_text
    if not 0 <= ts <= MAX_U64:
        raise ValueError(f"timestamp {ts} is not a u64")
    text = base64.b64encode(ts.to_bytes(8, "little")).decode("ascii")
    _last_ts = (ts, text)
    return text


_last_ts: tuple[int, str] = (-1, "")


def decode_ts(text: object) -> int:
    """Parse a base64 u64 timestamp (``-``/``_`` accepted, as the npm client does)."""
    if not isinstance(text, str):
        raise ValueError(f"expected a base64 u64 timestamp string, got {text!r}")
    if len(text) % 4:
        raise ValueError(f"base64 timestamp {text!r} must have a length that is a multiple of 4")
    try:
        raw = base64.b64decode(text.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"invalid base64 timestamp {text!r}: {exc}") from None
    if len(raw) != 8:
        raise ValueError(f"base64 timestamp {text!r} must hold 8 bytes, got {len(raw)}")
    return int.from_bytes(raw, "little")


# ---------------------------------------------------------------------------------------------
# Client -> server


@dataclass(frozen=True, slots=True)
class Connect:
    session_id: str
    connection_count: int
    last_close_reason: str | None
    max_observed_timestamp: int | None
    client_ts: float | None


@dataclass(frozen=True, slots=True)
class AddQuery:
    query_id: int
    udf_path: str
    args: Any  # raw wire JSON: usually a list holding one Convex-encoded object
    journal: str | None
    component_path: str | None


@dataclass(frozen=True, slots=True)
class RemoveQuery:
    query_id: int


QuerySetModification: TypeAlias = AddQuery | RemoveQuery


@dataclass(frozen=True, slots=True)
class ModifyQuerySet:
    base_version: int
    new_version: int
    modifications: tuple[QuerySetModification, ...]


@dataclass(frozen=True, slots=True)
class Mutation:
    request_id: int
    udf_path: str
    args: Any
    component_path: str | None


@dataclass(frozen=True, slots=True)
class Action:
    request_id: int
    udf_path: str
    args: Any
    component_path: str | None


@dataclass(frozen=True, slots=True)
class Authenticate:
    base_version: int
    token_type: Literal["User", "Admin", "None"]
    value: str | None
    #: Admin only: the identity claims the admin acts as (``impersonating`` or ``actingAs``).
    acting_as: Any = None


@dataclass(frozen=True, slots=True)
class Event:
    event_type: str
    event: Any


ClientMessage: TypeAlias = Connect | ModifyQuerySet | Mutation | Action | Authenticate | Event


def parse_client_message(text: str | bytes) -> ClientMessage:
    """Parse one client frame, raising :class:`ProtocolError` with a message naming the fault
    (a short one: nothing the client sent is echoed at length)."""
    try:
        check_json_nesting(text, "The message")
        raw = json.loads(text)
    except InvalidValueError as exc:
        raise ProtocolError(f"Malformed message: {exc}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"Malformed message: not valid JSON ({exc}).") from None
    if not isinstance(raw, dict):
        raise ProtocolError(f"Malformed message: expected a JSON object, got {_short(raw)}.")
    kind = raw.get("type")
    parser = _PARSERS.get(kind) if isinstance(kind, str) else None
    if parser is None:
        raise ProtocolError(
            f"Malformed message: unknown type {_short(kind)}; expected one of {sorted(_PARSERS)}."
        )
    try:
        message: ClientMessage = parser(raw)
    except ProtocolError as exc:
        raise ProtocolError(f"Malformed {kind} message: {exc}") from None
    return message


def _short(value: Any, limit: int = 80) -> str:
    """``value`` as a JSON preview of at most about ``limit`` characters (an error names what
    came without echoing megabytes of it)."""
    if isinstance(value, str):
        text = json.dumps(value[:limit])
    elif isinstance(value, list):
        if len(value) > 8:
            return f"an array of {len(value)} items"
        text = "[" + ", ".join(_short(item, limit // 2) for item in value) + "]"
    elif isinstance(value, dict):
        if len(value) > 8:
            return f"an object with {len(value)} fields"
        text = (
            "{"
            + ", ".join(f"{_short(k, 20)}: {_short(v, limit // 2)}" for k, v in value.items())
            + "}"
        )
    else:
        text = json.dumps(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _field(
    raw: dict[str, Any], name: str, kind: type | tuple[type, ...], *, optional: bool = False
) -> Any:
    if name not in raw or (optional and raw[name] is None):
        if optional:
            return None
        raise ProtocolError(f"missing field {name!r}")
    value = raw[name]
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _as_tuple(kind)):
        raise ProtocolError(f"field {name!r} has the wrong type: {_short(value)}")
    return value


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _u32(raw: dict[str, Any], name: str) -> int:
    value = _field(raw, name, (int, float))
    if isinstance(value, float):
        if not value.is_integer():
            raise ProtocolError(f"field {name!r} must be an integer, got {value!r}")
        value = int(value)
    if not 0 <= value <= 2**32 - 1:
        raise ProtocolError(f"field {name!r} must be a u32, got {value!r}")
    return int(value)


def _parse_connect(raw: dict[str, Any]) -> Connect:
    max_ts = raw.get("maxObservedTimestamp")
    try:
        max_observed = None if max_ts is None else decode_ts(max_ts)
    except ValueError as exc:
        raise ProtocolError(f"field 'maxObservedTimestamp': {exc}") from None
    client_ts = raw.get("clientTs")
    return Connect(
        session_id=_field(raw, "sessionId", str),
        connection_count=_u32(raw, "connectionCount") if "connectionCount" in raw else 0,
        last_close_reason=_field(raw, "lastCloseReason", str, optional=True),
        max_observed_timestamp=max_observed,
        client_ts=float(client_ts) if isinstance(client_ts, (int, float)) else None,
    )


def _parse_modification(raw: Any) -> QuerySetModification:
    if not isinstance(raw, dict):
        raise ProtocolError(f"a modification must be an object, got {_short(raw)}")
    kind = raw.get("type")
    if kind == "Add":
        if "args" not in raw:
            raise ProtocolError("an Add modification is missing 'args'")
        return AddQuery(
            query_id=_u32(raw, "queryId"),
            udf_path=_field(raw, "udfPath", str),
            args=raw["args"],
            journal=_field(raw, "journal", str, optional=True),
            component_path=_field(raw, "componentPath", str, optional=True),
        )
    if kind == "Remove":
        return RemoveQuery(query_id=_u32(raw, "queryId"))
    raise ProtocolError(f"unknown modification type {kind!r}; expected 'Add' or 'Remove'")


def _parse_modify_query_set(raw: dict[str, Any]) -> ModifyQuerySet:
    modifications = _field(raw, "modifications", list)
    return ModifyQuerySet(
        base_version=_u32(raw, "baseVersion"),
        new_version=_u32(raw, "newVersion"),
        modifications=tuple(_parse_modification(m) for m in modifications),
    )


def _parse_request(raw: dict[str, Any]) -> tuple[int, str, Any, str | None]:
    if "args" not in raw:
        raise ProtocolError("missing field 'args'")
    return (
        _u32(raw, "requestId"),
        _field(raw, "udfPath", str),
        raw["args"],
        _field(raw, "componentPath", str, optional=True),
    )


def _parse_mutation(raw: dict[str, Any]) -> Mutation:
    return Mutation(*_parse_request(raw))


def _parse_action(raw: dict[str, Any]) -> Action:
    return Action(*_parse_request(raw))


def _parse_authenticate(raw: dict[str, Any]) -> Authenticate:
    token_type = raw.get("tokenType")
    if token_type not in ("User", "Admin", "None"):
        raise ProtocolError(
            f"field 'tokenType' must be 'User', 'Admin' or 'None', got {token_type!r}"
        )
    value = None if token_type == "None" else _field(raw, "value", str)
    acting_as = raw.get("impersonating", raw.get("actingAs")) if token_type == "Admin" else None
    return Authenticate(_u32(raw, "baseVersion"), token_type, value, acting_as)


def _parse_event(raw: dict[str, Any]) -> Event:
    event_type = raw.get("eventType")
    return Event(
        event_type=event_type if isinstance(event_type, str) else "", event=raw.get("event")
    )


_PARSERS: dict[str, Any] = {
    "Connect": _parse_connect,
    "ModifyQuerySet": _parse_modify_query_set,
    "Mutation": _parse_mutation,
    "Action": _parse_action,
    "Authenticate": _parse_authenticate,
    "Event": _parse_event,
}


# ---------------------------------------------------------------------------------------------
# Server -> client


class StateVersion(NamedTuple):
    """A client's view: query set version, identity version and timestamp (a tuple: compared
    in C, once per socket per commit)."""

    query_set: int = 0
    identity: int = 0
    ts: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"querySet": self.query_set, "identity": self.identity, "ts": encode_ts(self.ts)}

    def to_text(self) -> str:
        """``to_json()`` serialised, without the JSON encoder (one per Transition per socket)."""
        return (
            f'{{"querySet":{int(self.query_set)},"identity":{int(self.identity)},'
            f'"ts":"{encode_ts(self.ts)}"}}'
        )


def dumps(message: dict[str, Any]) -> str:
    """Compact JSON text for one frame (``allow_nan=False``: Convex JSON never holds NaN)."""
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


#: One modification of a Transition as ``(prefix, shared)`` bytes: the whole modification is
#: ``prefix + shared``; ``shared`` is a query result's bytes, the same object for every socket.
Modification: TypeAlias = tuple[bytes, bytes]


def transition_parts(
    start: StateVersion, end: StateVersion, modifications: list[Modification]
) -> list[bytes]:
    """A Transition as byte pieces, to be written back to back (``writelines``): the large
    shared result bytes are never copied into a per-socket message. The list may be returned
    again for the next identical Transition: do not change it.

    >>> b"".join(transition_parts(StateVersion(), StateVersion(1), []))
    b'{"type":"Transition","startVersion":{"querySet":0,"identity":0,"ts":"AAAAAAAAAAA="},"endVersion":{"querySet":1,"identity":0,"ts":"AAAAAAAAAAA="},"modifications":[]}'
    """
    global _last_transition
    last_start, last_end, last_modifications, last_parts = _last_transition
    # A commit's fan-out sends most sockets the same Transition (same versions, same query
    # ids, the same shared result): build it once. The list comparison is cheap, as the shared
    # bytes compare by identity.
    if start == last_start and end == last_end and modifications == last_modifications:
        return last_parts
    parts: list[bytes] = []
    pending = _transition_head(start, end)
    separator = b""
    for prefix, shared in modifications:
        pending += separator + prefix
        separator = b","
        if shared:
            parts.append(pending)
            parts.append(shared)
            pending = b""
    parts.append(pending + b"]}")
    _last_transition = (start, end, modifications, parts)
    return parts


_last_transition: tuple[StateVersion | None, StateVersion | None, list[Modification], list[bytes]]
_last_transition = (None, None, [], [])


def _transition_head(start: StateVersion, end: StateVersion) -> bytes:
    # After a commit every socket whose query changed gets a Transition, most of them between
    # the same two versions: build that head once.
    global _last_head
    last_start, last_end, head = _last_head
    if start == last_start and end == last_end:
        return head
    head = (
        '{"type":"Transition","startVersion":'
        + start.to_text()
        + ',"endVersion":'
        + end.to_text()
        + ',"modifications":['
    ).encode()
    _last_head = (start, end, head)
    return head


_last_head: tuple[StateVersion | None, StateVersion | None, bytes] = (None, None, b"")


def query_result_body(
    value: Any,
    log_lines: list[str],
    journal: str | None,
    *,
    error_message: str | None = None,
    error_data: Any = None,
    has_error_data: bool = False,
) -> str:
    """The part of a QueryUpdated/QueryFailed after ``queryId``, serialised once per result.

    ``value`` and ``error_data`` must already be Convex-encoded JSON.
    """
    if error_message is None:
        body: dict[str, Any] = {"type": "QueryUpdated", "value": value}
    else:
        body = {"type": "QueryFailed", "errorMessage": error_message}
        if has_error_data:
            body["errorData"] = error_data
    body["logLines"] = log_lines
    body["journal"] = journal
    return dumps(body)


def shared_body(body: str) -> bytes:
    """A serialised result body as the bytes :func:`query_modification` shares between
    sockets: everything after its opening brace."""
    return body.encode()[1:]


def query_modification(query_id: int, shared: bytes) -> Modification:
    """A QueryUpdated/QueryFailed modification: the query id spliced into the result's shared
    bytes (:func:`shared_body`): ``{"queryId":7,"type":...}``."""
    prefix = _QUERY_ID_PREFIXES.get(query_id)
    if prefix is None:
        prefix = b'{"queryId":%d,' % query_id
        if query_id < 1024:
            _QUERY_ID_PREFIXES[query_id] = prefix
    return prefix, shared


_QUERY_ID_PREFIXES: dict[int, bytes] = {}


def query_removed(query_id: int) -> Modification:
    return b'{"type":"QueryRemoved","queryId":%d}' % query_id, b""


def function_response(
    kind: str,
    request_id: int,
    *,
    result: Any,
    ts: int | None,
    log_lines: list[str],
    success: bool,
    error_data: Any = None,
    has_error_data: bool = False,
) -> str:
    """A MutationResponse or ActionResponse (``kind``: "Mutation" / "Action"); on failure
    ``result`` is the error message string. Only a successful mutation carries ``ts``."""
    message: dict[str, Any] = {
        "type": f"{kind}Response",
        "requestId": request_id,
        "success": success,
        "result": result,
        "logLines": log_lines,
    }
    if success and ts is not None:
        message["ts"] = encode_ts(ts)
    if not success and has_error_data:
        message["errorData"] = error_data
    return dumps(message)


def auth_error(error: str, base_version: int, *, auth_update_attempted: bool = True) -> str:
    return dumps(
        {
            "type": "AuthError",
            "error": error,
            "baseVersion": base_version,
            "authUpdateAttempted": auth_update_attempted,
        }
    )


def fatal_error(error: str) -> str:
    return dumps({"type": "FatalError", "error": error})


PING = '{"type":"Ping"}'


# ---------------------------------------------------------------------------------------------
# Function log lines on the server console

#: Log lines and error texts quoting client input are cut to this many characters.
MAX_LOGGED_CHARS = 2000


def clip(text: object, limit: int = MAX_LOGGED_CHARS) -> str:
    """``text`` (``str()`` of anything) cut to ``limit`` characters, saying how much was cut:
    a log line or error never repeats megabytes a client sent.

    >>> clip("x" * 30, 10)
    'xxxxxxxxxx... (20 more characters)'
    """
    text = text if isinstance(text, str) else str(text)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters)"


def log_function_lines(kind: str, path: str, lines: list[str]) -> None:
    """Echo a call's log lines to the server console, prefixed like the npm client does:
    ``[CONVEX Q(messages:list)] [LOG] 'hello'``."""
    if not lines:
        return
    letter = {"query": "Q", "mutation": "M", "action": "A"}.get(kind, "F")
    for line in lines:
        _log.info("[CONVEX %s(%s)] %s", letter, clip(path, 200), clip(line))


# ---------------------------------------------------------------------------------------------
# The admin log stream (GET /api/_pyconvex/logs): one JSON object per execution

_LETTERS = {"query": "Q", "mutation": "M", "action": "A", "http_action": "H"}


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One function execution: when, what, how long, how it ended, and its log lines."""

    seq: int
    started_ms: float
    kind: str
    path: str
    duration_ms: float
    error: str | None
    log_lines: list[str]
    #: For an uncaught exception: its traceback with the user's frames only, and with all.
    traceback: str | None = None
    full_traceback: str | None = None
    #: The call's request id: for a failure, the one in the client's error message.
    request_id: str | None = None
    #: What started it when no client did: "scheduled", or "cron <name>" for a cron job's run.
    trigger: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def letter(self) -> str:
        """Q, M, A or H, as Convex's log view shows the kind."""
        return _LETTERS.get(self.kind, "?")

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "timestamp": self.started_ms,
            "kind": self.kind,
            "path": self.path,
            "durationMs": self.duration_ms,
            "status": "success" if self.error is None else "failure",
            "error": self.error,
            "logLines": list(self.log_lines),
            "traceback": self.traceback,
            "fullTraceback": self.full_traceback,
            "requestId": self.request_id,
            "trigger": self.trigger,
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> LogEntry:
        """The inverse of :meth:`to_json` (raises KeyError/TypeError on a malformed object)."""
        return cls(
            int(obj["seq"]),
            float(obj["timestamp"]),
            str(obj["kind"]),
            str(obj["path"]),
            float(obj["durationMs"]),
            _optional_str(obj.get("error")),
            [str(line) for line in obj.get("logLines") or []],
            _optional_str(obj.get("traceback")),
            _optional_str(obj.get("fullTraceback")),
            _optional_str(obj.get("requestId")),
            _optional_str(obj.get("trigger")),
        )


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)

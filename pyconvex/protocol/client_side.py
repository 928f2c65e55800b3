"""The client's half of the sync protocol (PROTOCOL.md §1): the frames a client sends,
serialised from the same dataclasses the server parses them into, and the frames a server
sends, parsed into small dataclasses.

Values stay in Convex's JSON encoding here (the client decodes them)::

    >>> encode_client_message(Mutation(3, "messages:send", [{"body": "hi"}], None))
    '{"type":"Mutation","requestId":3,"udfPath":"messages:send","args":[{"body":"hi"}]}'
    >>> parse_server_message('{"type":"Ping"}')
    Ping()
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, TypeAlias

from pyconvex.protocol import (
    Action,
    AddQuery,
    Authenticate,
    ClientMessage,
    Connect,
    Event,
    ModifyQuerySet,
    Mutation,
    ProtocolError,
    StateVersion,
    decode_ts,
    dumps,
    encode_ts,
)

# ---------------------------------------------------------------------------------------------
# Client -> server: serialising


def encode_client_message(message: ClientMessage) -> str:
    """One client frame as JSON text (the inverse of ``parse_client_message``)."""
    return dumps(client_message_json(message))


def client_message_json(message: ClientMessage) -> dict[str, Any]:
    if isinstance(message, Mutation | Action):
        out: dict[str, Any] = {
            "type": "Mutation" if isinstance(message, Mutation) else "Action",
            "requestId": message.request_id,
            "udfPath": message.udf_path,
            "args": message.args,
        }
        if message.component_path is not None:
            out["componentPath"] = message.component_path
        return out
    if isinstance(message, ModifyQuerySet):
        return {
            "type": "ModifyQuerySet",
            "baseVersion": message.base_version,
            "newVersion": message.new_version,
            "modifications": [_modification_json(m) for m in message.modifications],
        }
    if isinstance(message, Connect):
        out = {
            "type": "Connect",
            "sessionId": message.session_id,
            "connectionCount": message.connection_count,
            "lastCloseReason": message.last_close_reason,
            "clientTs": message.client_ts or 0,
        }
        if message.max_observed_timestamp is not None:
            out["maxObservedTimestamp"] = encode_ts(message.max_observed_timestamp)
        return out
    if isinstance(message, Authenticate):
        out = {"type": "Authenticate", "baseVersion": message.base_version}
        out["tokenType"] = message.token_type
        if message.token_type != "None":
            out["value"] = message.value
        if message.token_type == "Admin" and message.acting_as is not None:
            out["impersonating"] = message.acting_as
        return out
    if isinstance(message, Event):
        return {"type": "Event", "eventType": message.event_type, "event": message.event}
    raise TypeError(f"not a client message: {message!r}")


def _modification_json(change: AddQuery | Any) -> dict[str, Any]:
    if isinstance(change, AddQuery):
        out: dict[str, Any] = {
            "type": "Add",
            "queryId": change.query_id,
            "udfPath": change.udf_path,
            "args": change.args,
        }
        if change.journal is not None:
            out["journal"] = change.journal
        if change.component_path is not None:
            out["componentPath"] = change.component_path
        return out
    return {"type": "Remove", "queryId": change.query_id}


# ---------------------------------------------------------------------------------------------
# Server -> client: parsing


@dataclass(frozen=True, slots=True)
class QueryUpdated:
    query_id: int
    value: Any  # Convex JSON
    log_lines: tuple[str, ...]
    journal: str | None


@dataclass(frozen=True, slots=True)
class QueryFailed:
    query_id: int
    error_message: str
    log_lines: tuple[str, ...]
    journal: str | None
    #: Present (even when JSON null) only for a ConvexError: ``has_error_data`` says which.
    error_data: Any
    has_error_data: bool


@dataclass(frozen=True, slots=True)
class QueryRemoved:
    query_id: int


StateModification: TypeAlias = QueryUpdated | QueryFailed | QueryRemoved


@dataclass(frozen=True, slots=True)
class Transition:
    start: StateVersion
    end: StateVersion
    modifications: tuple[StateModification, ...]


@dataclass(frozen=True, slots=True)
class FunctionResponse:
    """A MutationResponse (``kind`` "Mutation") or ActionResponse ("Action"). On failure
    ``result`` is the error message; ``ts`` is a successful mutation's commit timestamp."""

    kind: str
    request_id: int
    success: bool
    result: Any
    ts: int | None
    log_lines: tuple[str, ...]
    error_data: Any
    has_error_data: bool


@dataclass(frozen=True, slots=True)
class AuthError:
    error: str
    base_version: int | None
    auth_update_attempted: bool


@dataclass(frozen=True, slots=True)
class FatalError:
    error: str


@dataclass(frozen=True, slots=True)
class Ping:
    pass


@dataclass(frozen=True, slots=True)
class TransitionChunk:
    """A piece of a large Transition's JSON text; join ``total_parts`` pieces in order."""

    chunk: str
    part_number: int
    total_parts: int
    transition_id: str


ServerMessage: TypeAlias = (
    Transition | FunctionResponse | AuthError | FatalError | Ping | TransitionChunk
)


def parse_server_message(text: str | bytes) -> ServerMessage:
    """Parse one server frame; raises :class:`ProtocolError` naming what is wrong."""
    try:
        raw = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"Malformed server message: not valid JSON ({exc}).") from None
    if not isinstance(raw, dict):
        raise ProtocolError("Malformed server message: expected a JSON object.")
    kind = raw.get("type")
    try:
        if kind == "Transition":
            return _transition(raw)
        if kind == "MutationResponse" or kind == "ActionResponse":
            return _response(raw, kind[: -len("Response")])
        if kind == "Ping":
            return Ping()
        if kind == "AuthError":
            base = raw.get("baseVersion")
            return AuthError(
                str(raw.get("error", "")),
                int(base) if isinstance(base, int | float) else None,
                bool(raw.get("authUpdateAttempted", True)),
            )
        if kind == "FatalError":
            return FatalError(str(raw.get("error", "")))
        if kind == "TransitionChunk":
            return TransitionChunk(
                str(raw["chunk"]),
                int(raw["partNumber"]),
                int(raw["totalParts"]),
                str(raw["transitionId"]),
            )
    except (KeyError, TypeError, ValueError) as exc:
        raise ProtocolError(f"Malformed {kind} message: {type(exc).__name__}: {exc}") from None
    raise ProtocolError(f"Unknown server message type {kind!r}.")


def state_version(raw: Any) -> StateVersion:
    return StateVersion(int(raw["querySet"]), int(raw["identity"]), decode_ts(raw["ts"]))


def _lines(raw: dict[str, Any]) -> tuple[str, ...]:
    lines = raw.get("logLines")
    return tuple(str(line) for line in lines) if lines else ()


def _transition(raw: dict[str, Any]) -> Transition:
    modifications: list[StateModification] = []
    for mod in raw["modifications"]:
        kind = mod["type"]
        query_id = int(mod["queryId"])
        if kind == "QueryUpdated":
            modifications.append(
                QueryUpdated(query_id, mod.get("value"), _lines(mod), mod.get("journal"))
            )
        elif kind == "QueryFailed":
            modifications.append(
                QueryFailed(
                    query_id,
                    str(mod.get("errorMessage", "")),
                    _lines(mod),
                    mod.get("journal"),
                    mod.get("errorData"),
                    "errorData" in mod,
                )
            )
        elif kind == "QueryRemoved":
            modifications.append(QueryRemoved(query_id))
        else:
            raise ValueError(f"unknown state modification {kind!r}")
    return Transition(
        state_version(raw["startVersion"]), state_version(raw["endVersion"]), tuple(modifications)
    )


def _response(raw: dict[str, Any], kind: str) -> FunctionResponse:
    success = raw["success"]
    if not isinstance(success, bool):
        raise ValueError("'success' must be a boolean")
    ts = raw.get("ts")
    return FunctionResponse(
        kind,
        int(raw["requestId"]),
        success,
        raw.get("result"),
        decode_ts(ts) if success and ts is not None else None,
        _lines(raw),
        raw.get("errorData"),
        "errorData" in raw,
    )

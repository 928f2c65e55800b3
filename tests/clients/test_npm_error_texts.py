"""The official npm clients' error messages read as Convex's (issue 9 item 3).

Each expected text is built the way the Convex backend writes it: ``[Request ID: <16 hex>]
Server Error``, then the error as its runtime reports it (``Uncaught <class>: <message>``, a
ConvexError's data as compact JSON, ``ArgumentValidationError:`` with the validator's text),
the user's frames, and a final newline; the WebSocket client wraps that as
``[CONVEX M(path)] <text>\\n  Called by client``. The request id is also the one in the
deployment's log history (``pyconvex logs``, the dev console).
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from pyconvex.client.admin import AdminClient

pytestmark = pytest.mark.clients

REQUEST = r"\[Request ID: ([0-9a-f]{16})\] Server Error\n"
MISSING_TAIL = "Consider wrapping the field validator in `v.optional(...)` if this is expected."
SEND = "v.object({author: v.string(), body: v.string()})"


def frame(function: str) -> str:
    return rf"    at {function} \(convex/messages\.py:\d+\)\n"


EXPECTED = {
    "convex_error": re.escape('Uncaught ConvexError: {"code":"BAD","n":1}\n') + frame("fail"),
    # The client sends object keys sorted; an int64 reads "7n", a whole float64 100.
    "convex_error_values": re.escape('Uncaught ConvexError: {"f":100,"g":0.5,"n":"7n","s":"x"}\n')
    + frame("fail_with"),
    "convex_error_string": re.escape("Uncaught ConvexError: just a string\n") + frame("fail_with"),
    "uncaught": re.escape("Uncaught RuntimeError: boom\n") + frame("crash"),
    "missing_field": re.escape(
        f"ArgumentValidationError: Object is missing the required field `body`. {MISSING_TAIL}\n"
        f'\nObject: {{author: "a"}}\nValidator: {SEND}\n'
        'messages:send: Object is missing the required field "body" (v.string())\n'
    ),
    "extra_field": re.escape(
        "ArgumentValidationError: Object contains extra field `extra` that is not in the "
        f'validator.\n\nObject: {{author: "a", body: "b", extra: 1.0}}\nValidator: {SEND}\n'
        'messages:send: Object has an unexpected field "extra" (allowed fields: "author", "body")\n'
    ),
    "wrong_type": re.escape(
        "ArgumentValidationError: Value does not match validator.\nPath: .author\nValue: 5.0\n"
        "Validator: v.string()\nmessages:send: Value at .author must be v.string(), got float64 5.0"
    )
    + r".*\n",
    "returns": re.escape(
        "ReturnsValidationError: Value does not match validator.\n\nValue: 5.0\n"
        "Validator: v.string()\nmessages:bad_return returned a value that does not match "
        "returns=: Value must be v.string(), got float64 5.0\n"
    ),
    "not_found": re.escape("Could not find public function for 'messages:nope'.") + r".*\n",
}


def test_error_messages_are_convexs(npm: Any, server: Any) -> None:
    r = npm("error_texts.mjs", server)
    ids = {}
    for step, pattern in EXPECTED.items():
        line = r.step(step)
        m = re.fullmatch(REQUEST + pattern, line["message"], re.S)
        assert m, f"{step}: {line['message']!r}"
        ids[step] = m.group(1)
        assert line["isConvexError"] is step.startswith("convex_error"), line
    assert len(set(ids.values())) == len(ids)  # a new id for every call
    assert r.step("convex_error_values")["data"] == {
        "f": 100,
        "g": 0.5,
        "n": {"$integer": "BwAAAAAAAAA="},
        "s": "x",
    }

    ws = r.step("ws_convex_error")
    assert re.fullmatch(
        r"\[CONVEX M\(messages:fail\)\] "
        + REQUEST
        + EXPECTED["convex_error"]
        + r"\n  Called by client",
        ws["message"],
    ), ws["message"]
    assert ws["data"] == {"code": "BAD", "n": 1}
    uncaught = r.step("ws_uncaught")["message"]
    assert re.fullmatch(
        r"\[CONVEX Q\(messages:crash\)\] "
        + REQUEST
        + EXPECTED["uncaught"]
        + r"\n  Called by client",
        uncaught,
    ), uncaught

    # The id a client saw leads to the call in the deployment's log history.
    admin = AdminClient.locate(url=server.url, root=server.project)
    logged = {entry.request_id: entry for entry in admin.log_history(500)}
    for step, request_id in ids.items():
        entry = logged.get(request_id)
        assert entry is not None and not entry.ok, step
        assert entry.error is not None and request_id in entry.error

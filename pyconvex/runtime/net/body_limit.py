"""A cap on HTTP request bodies, enforced as they stream in.

Function arguments are at most 16 MiB in Convex, so a larger body on the API port can only be
refused; reading it whole first would let one client hold hundreds of megabytes. A request
whose ``Content-Length`` says it is too large is answered 413 before a byte of its body is
read; a body without one (chunked) is counted as it arrives, and answered 413 the moment it
passes the limit::

    await limit_body(app, scope, receive, send, MAX_FUNCTION_BODY)

The 413 is sent from here, and the app reading the body gets :class:`BodyTooLarge` (an
endpoint that catches every exception must let it through: ``except BodyTooLarge: raise``);
whatever the app sends after that is dropped. Before answering, the rest of the body is read
and dropped (as nginx's lingering close does; at most ``DRAIN_BYTES`` more, for at most
``DRAIN_SECONDS``): a client that sends its whole body before it reads the answer would
otherwise see the connection reset instead of the 413. A client that asked to be told first
(``Expect: 100-continue``, as curl does for large bodies) is answered at once.
"""

from __future__ import annotations

import asyncio
import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pyconvex.errors import PyconvexError

#: Convex's limit on a function's arguments, hence on a function call's body.
MAX_FUNCTION_BODY = 16 * 1024 * 1024
#: Convex's limit on an HTTP action's request body.
MAX_HTTP_ACTION_BODY = 20 * 1024 * 1024
#: How much of a refused body is read and dropped before the 413, and for how long at most.
DRAIN_BYTES = 256 * 1024 * 1024
DRAIN_SECONDS = 10.0


class BodyTooLarge(PyconvexError):
    """Raised to the app reading a body over the limit (the client has its 413 already)."""


def _mib(n: int) -> str:
    return f"{n / (1024 * 1024):g} MiB"


def too_large_message(limit: int, size: int | None) -> str:
    got = f" ({size} bytes)" if size is not None else ""
    return (
        f"The request body is too large{got}: the limit is {_mib(limit)} ({limit} bytes), "
        "Convex's limit on a function's arguments. Send less per request (split the data "
        "over several calls), or upload files with ctx.storage.generate_upload_url()."
    )


async def limit_body(app: ASGIApp, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
    """Run ``app`` for one HTTP request, refusing a body over ``limit`` bytes with 413."""
    declared = _header(scope, b"content-length")
    size = int(declared) if declared is not None and declared.isdigit() else None
    if size is not None and size > limit:
        if _header(scope, b"expect") != b"100-continue":
            await _drain(receive, True)
        await _send_413(send, limit, size)
        return
    state = {"received": 0, "refused": False, "started": False}

    async def counting_receive() -> Message:
        message = await receive()
        if message["type"] == "http.request":
            state["received"] += len(message.get("body", b""))
            if state["received"] > limit and not state["refused"]:
                state["refused"] = True
                if not state["started"]:
                    await _drain(receive, message.get("more_body", False))
                    await _send_413(send, limit, None)
                raise BodyTooLarge(too_large_message(limit, None))
        return message

    async def guarded_send(message: Message) -> None:
        if state["refused"]:
            return  # the 413 went out; the app's own answer (e.g. a 500) is dropped
        if message["type"] == "http.response.start":
            state["started"] = True
        await send(message)

    try:
        await app(scope, counting_receive, guarded_send)
    except BodyTooLarge:
        if not state["refused"]:
            raise


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).strip().lower()
    return None


async def _drain(receive: Receive, more_body: bool) -> None:
    """Read and drop what is left of the request body (bounded in bytes and time)."""
    dropped = 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DRAIN_SECONDS
    while more_body and dropped <= DRAIN_BYTES:
        try:
            message = await asyncio.wait_for(receive(), max(deadline - loop.time(), 0.001))
        except TimeoutError:
            return
        if message["type"] != "http.request":
            return
        dropped += len(message.get("body", b""))
        more_body = message.get("more_body", False)


async def _send_413(send: Send, limit: int, size: int | None) -> None:
    body = json.dumps(
        {"code": "RequestTooLarge", "message": too_large_message(limit, size)}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})

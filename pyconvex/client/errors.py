"""What can go wrong talking to a deployment, one class per way to recover.

From the client (:mod:`pyconvex.client`)::

    try:
        await client.mutation(api.messages.send, {"body": ""})
    except ConvexError as e:          # the function raised ConvexError(data): e.data
        ...
    except FunctionError as e:        # any other failure of the function: e.message
        ...
    except ConnectionLostError:       # an action was running when the connection dropped
        ...
    except NotConvexDeploymentError:  # the URL answers, but is no Convex deployment
        ...
    except ClientClosedError:         # the client was closed
        ...

From the admin API (:mod:`pyconvex.client.admin`)::

try:
    client = AdminClient.locate()
    client.run_function("messages:list", {})
except DeploymentNotFoundError:   # nothing serves this project: start `pyconvex dev`
    ...
except UnreachableError:          # the URL does not answer
    ...
except AdminKeyError:             # no admin key, or the deployment refused it
    ...
except RequestRefusedError as e:  # the deployment answered with an error (e.status, e.code)
    ...
"""

from __future__ import annotations

from typing import Any

from pyconvex.errors import ConvexError as _ServerConvexError
from pyconvex.errors import PyconvexError


class ClientError(PyconvexError):
    """A request to a deployment did not get the answer asked for."""


class DeploymentNotFoundError(ClientError):
    """No URL was given and no ``pyconvex dev`` serves this project (or its settings are
    unreadable: ``reason`` says which)."""

    def __init__(self, message: str, *, project: str | None = None, reason: str = "") -> None:
        self.project = project
        self.reason = reason
        super().__init__(message)


class UnreachableError(ClientError):
    """The deployment's URL does not answer (refused, timed out, closed mid-stream)."""

    def __init__(self, url: str, cause: str) -> None:
        self.url = url
        self.cause = cause
        super().__init__(f"Cannot reach the deployment at {url}: {cause}")


class AdminKeyError(ClientError):
    """There is no admin key to send, or the deployment refused the one sent."""

    def __init__(self, message: str, *, url: str | None = None, detail: str = "") -> None:
        self.url = url
        self.detail = detail
        super().__init__(message)


class RequestRefusedError(ClientError):
    """The deployment answered a request with an error status.

    ``doing`` says what was asked ("run messages:send"), ``status`` is the HTTP status (0 for
    a subscription the server closed), ``code`` and ``message`` are the server's.
    """

    def __init__(self, doing: str, url: str, status: int, code: str, message: str) -> None:
        self.doing = doing
        self.url = url
        self.status = status
        self.code = code
        self.message = message
        super().__init__(f"Cannot {doing} ({code}): {message}")


class FunctionError(ClientError):
    """A query, mutation or action failed on the deployment (not with a ConvexError).

    ``message`` is the deployment's text (``[Request ID: ...] Server Error`` then the error);
    ``function`` the path called; ``log_lines`` what the call printed.
    """

    def __init__(self, function: str, message: str, log_lines: tuple[str, ...] = ()) -> None:
        self.function = function
        self.message = message
        self.log_lines = log_lines
        super().__init__(message)


class ConvexError(_ServerConvexError, FunctionError):
    """The function raised ``ConvexError(data)``: ``data`` is that data (decoded), ``message``
    the deployment's text. ``except pyconvex.ConvexError`` catches it too."""

    def __init__(
        self, function: str, message: str, data: Any, log_lines: tuple[str, ...] = ()
    ) -> None:
        FunctionError.__init__(self, function, message, log_lines)
        self.data = data


class ConnectionLostError(ClientError):
    """The connection dropped while an action ran: whether it completed is unknown (actions
    are not retried, as they may have side effects)."""


class NotConvexDeploymentError(ClientError):
    """The URL answers, but not as a Convex deployment (no sync WebSocket at ``/api/sync``)."""

    def __init__(self, url: str, detail: str) -> None:
        self.url = url
        self.detail = detail
        super().__init__(
            f"{url} is not a Convex deployment: {detail}. Check the URL: `pyconvex dev` prints "
            "the one it serves (http://127.0.0.1:3210 by default)."
        )


class ClientClosedError(ClientError):
    """The client was closed (by :meth:`close`, or for good after a fatal error)."""


class AuthenticationError(ClientError):
    """The deployment refused the credentials and none could replace them (an admin key it
    does not accept, or the token refresh failed for good)."""

"""What can go wrong talking to a deployment, one class per way to recover::

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

"""Typed ``ctx`` pieces that do not depend on the schema: auth, storage, the scheduler, the
action ctx, decorators.

``convex/_generated/server.py`` combines them with the schema's tables into ``QueryCtx``,
``MutationCtx`` and ``ActionCtx``; import those from there::

    from ._generated.server import ActionCtx, action
    from ._generated.api import api

    @action
    async def resend(ctx: ActionCtx, body: str) -> None:
        await ctx.run_mutation(api.messages.send, {"body": body})
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Mapping
from datetime import datetime
from typing import (
    IO,
    Any,
    Concatenate,
    Literal,
    Never,
    ParamSpec,
    Protocol,
    TypeAlias,
    TypedDict,
    TypeVar,
    overload,
)

from pyconvex.server.functions import FunctionDefinition
from pyconvex.server.references import FunctionReference, NoArgs
from pyconvex.values.annotations import Id
from pyconvex.values.validators import ObjectValidator, Validator

ArgsT = TypeVar("ArgsT")
ReturnsT = TypeVar("ReturnsT")
CtxT = TypeVar("CtxT", covariant=True)
P = ParamSpec("P")
T = TypeVar("T")

#: The ``args`` of ``run_query(ref, args)``: the reference's arguments TypedDict. The never-callable
#: alternative makes mypy infer ``ArgsT`` from the reference first and then check the dict
#: literal against it (a plain ``ArgsT`` would be inferred from both and fail on every call).
ArgsOf: TypeAlias = "ArgsT | Callable[[Never], ArgsT]"

#: ``args=`` of a decorator: a dict of validators or ``v.object(...)``.
ArgsSpec = Mapping[str, Validator] | ObjectValidator


class UserIdentity(Protocol):
    """Who is calling: ``await ctx.auth.get_user_identity()`` (None when unauthenticated).

    ``token_identifier`` ("issuer|subject"), ``subject`` and ``issuer`` are always set; the
    standard OpenID Connect claims are snake_case attributes, None when the token lacks them;
    ``claims`` holds every claim, custom ones included (also ``identity["org_id"]``). The
    object is ``pyconvex.testing.UserIdentity``, the one class the whole project builds.
    """

    @property
    def token_identifier(self) -> str: ...
    @property
    def subject(self) -> str: ...
    @property
    def issuer(self) -> str: ...
    @property
    def name(self) -> str | None: ...
    @property
    def given_name(self) -> str | None: ...
    @property
    def family_name(self) -> str | None: ...
    @property
    def nickname(self) -> str | None: ...
    @property
    def preferred_username(self) -> str | None: ...
    @property
    def profile_url(self) -> str | None: ...
    @property
    def picture_url(self) -> str | None: ...
    @property
    def email(self) -> str | None: ...
    @property
    def email_verified(self) -> bool | None: ...
    @property
    def gender(self) -> str | None: ...
    @property
    def birthday(self) -> str | None: ...
    @property
    def timezone(self) -> str | None: ...
    @property
    def language(self) -> str | None: ...
    @property
    def phone_number(self) -> str | None: ...
    @property
    def phone_number_verified(self) -> bool | None: ...
    @property
    def address(self) -> Any: ...  # a string or an object, as the provider sends it
    @property
    def updated_at(self) -> Any: ...  # seconds since the epoch (OIDC) or a string
    @property
    def claims(self) -> Mapping[str, Any]: ...
    def __getitem__(self, claim: str) -> Any: ...


class Auth(Protocol):
    """``ctx.auth``: ``identity = await ctx.auth.get_user_identity()``."""

    async def get_user_identity(self) -> UserIdentity | None:
        """The caller's identity, or None when the call carries no valid token."""
        ...


#: Something that names a function without a generated reference.
FunctionName = str | FunctionDefinition


#: The id of a stored file: a document of the ``_storage`` system table.
StorageId: TypeAlias = Id[Literal["_storage"]]
#: The id of a scheduled job: a document of the ``_scheduled_functions`` system table.
ScheduledFunctionId: TypeAlias = Id[Literal["_scheduled_functions"]]
#: What ``store`` takes: bytes, a binary file object, or an (async) iterable of byte chunks.
Blob: TypeAlias = (
    "bytes | bytearray | memoryview | IO[bytes] | Iterable[bytes] | AsyncIterable[bytes]"
)
#: When a job runs with ``run_at``: milliseconds since the epoch, or a ``datetime``.
When: TypeAlias = "float | datetime"


class FileMetadata(TypedDict):
    """``await ctx.storage.get_metadata(storage_id)``."""

    storageId: StorageId
    sha256: str
    size: float
    contentType: str | None


class StorageReader(Protocol):
    """``ctx.storage`` in a query: a stored file's URL and metadata (reads are reactive)."""

    async def get_url(self, storage_id: StorageId | str) -> str | None:
        """A URL serving the file with its Content-Type (None once it is deleted)."""
        ...

    async def get_metadata(self, storage_id: StorageId | str) -> FileMetadata | None:
        """The file's sha256, size and content type (None once it is deleted)."""
        ...


class StorageWriter(StorageReader, Protocol):
    """``ctx.storage`` in a mutation: the reader, upload URLs, and deleting with the mutation."""

    async def generate_upload_url(self) -> str:
        """A short-lived, single-use URL a client POSTs a file's raw bytes to; the answer is
        ``{"storageId": ...}``."""
        ...

    async def delete(self, storage_id: StorageId | str) -> None:
        """Delete the file when this mutation commits."""
        ...


class StorageActionWriter(StorageWriter, Protocol):
    """``ctx.storage`` in an action: the writer, plus storing and reading file contents."""

    async def store(self, blob: Blob, content_type: str | None = None) -> StorageId:
        """Store a new file, streamed (never whole in memory); returns its id."""
        ...

    async def get(self, storage_id: StorageId | str) -> bytes | None:
        """The file's bytes (None once it is deleted); prefer :meth:`stream` for big files."""
        ...

    async def stream(self, storage_id: StorageId | str) -> AsyncIterator[bytes] | None:
        """The file's bytes in chunks (None once it is deleted)."""
        ...


#: A function to schedule without a generated reference: ``"module:name"`` or the function.
Schedulable: TypeAlias = "str | FunctionDefinition"


class Scheduler(Protocol):
    """``ctx.scheduler``: run a mutation or action later. From a mutation, jobs are scheduled
    only if the mutation commits; jobs show in the ``_scheduled_functions`` system table.

    ``run_after(delay_s, fn, args)`` runs ``fn(args)`` ``delay_s`` seconds from now (0: as soon
    as possible), ``run_at(when, fn, args)`` at ``when`` (ms since the epoch, or a
    ``datetime``); both return the job's id, which ``cancel(job_id)`` takes::

        await ctx.scheduler.run_after(0, internal.notify.send, {"message_id": message_id})
    """

    @overload
    async def run_after(
        self,
        delay_s: float,
        fn: FunctionReference[Literal["mutation"], NoArgs, Any]
        | FunctionReference[Literal["action"], NoArgs, Any],
        args: NoArgs | None = None,
    ) -> ScheduledFunctionId: ...
    @overload
    async def run_after(
        self,
        delay_s: float,
        fn: FunctionReference[Literal["mutation"], ArgsT, Any],
        args: ArgsOf[ArgsT],
    ) -> ScheduledFunctionId: ...
    @overload
    async def run_after(
        self,
        delay_s: float,
        fn: FunctionReference[Literal["action"], ArgsT, Any],
        args: ArgsOf[ArgsT],
    ) -> ScheduledFunctionId: ...
    @overload
    async def run_after(
        self, delay_s: float, fn: Schedulable, args: Mapping[str, Any] | None = None
    ) -> ScheduledFunctionId: ...
    @overload
    async def run_at(
        self,
        when: When,
        fn: FunctionReference[Literal["mutation"], NoArgs, Any]
        | FunctionReference[Literal["action"], NoArgs, Any],
        args: NoArgs | None = None,
    ) -> ScheduledFunctionId: ...
    @overload
    async def run_at(
        self,
        when: When,
        fn: FunctionReference[Literal["mutation"], ArgsT, Any],
        args: ArgsOf[ArgsT],
    ) -> ScheduledFunctionId: ...
    @overload
    async def run_at(
        self, when: When, fn: FunctionReference[Literal["action"], ArgsT, Any], args: ArgsOf[ArgsT]
    ) -> ScheduledFunctionId: ...
    @overload
    async def run_at(
        self, when: When, fn: Schedulable, args: Mapping[str, Any] | None = None
    ) -> ScheduledFunctionId: ...
    async def cancel(self, job_id: ScheduledFunctionId | str) -> None:
        """Cancel a pending job (one that already finished is left as it is)."""
        ...


class ActionCtx(Protocol):
    """``ctx`` in an action: call queries, mutations and actions (each its own transaction).

    With a generated reference the arguments and the result are typed::

        n = await ctx.run_query(api.messages.count, {"channel": channel})
    """

    @property
    def auth(self) -> Auth: ...
    @property
    def storage(self) -> StorageActionWriter: ...
    @property
    def scheduler(self) -> Scheduler: ...

    async def run_blocking(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a blocking call (``requests.get``, ``time.sleep``) on a worker thread, so the
        server keeps serving while it waits."""
        ...

    @overload
    async def run_query(
        self,
        fn: FunctionReference[Literal["query"], NoArgs, ReturnsT],
        args: NoArgs | None = None,
    ) -> ReturnsT: ...
    @overload
    async def run_query(
        self, fn: FunctionReference[Literal["query"], ArgsT, ReturnsT], args: ArgsOf[ArgsT]
    ) -> ReturnsT: ...
    @overload
    async def run_query(self, fn: FunctionName, args: Mapping[str, Any] | None = None) -> Any: ...

    @overload
    async def run_mutation(
        self,
        fn: FunctionReference[Literal["mutation"], NoArgs, ReturnsT],
        args: NoArgs | None = None,
    ) -> ReturnsT: ...
    @overload
    async def run_mutation(
        self, fn: FunctionReference[Literal["mutation"], ArgsT, ReturnsT], args: ArgsOf[ArgsT]
    ) -> ReturnsT: ...
    @overload
    async def run_mutation(
        self, fn: FunctionName, args: Mapping[str, Any] | None = None
    ) -> Any: ...

    @overload
    async def run_action(
        self,
        fn: FunctionReference[Literal["action"], NoArgs, ReturnsT],
        args: NoArgs | None = None,
    ) -> ReturnsT: ...
    @overload
    async def run_action(
        self, fn: FunctionReference[Literal["action"], ArgsT, ReturnsT], args: ArgsOf[ArgsT]
    ) -> ReturnsT: ...
    @overload
    async def run_action(self, fn: FunctionName, args: Mapping[str, Any] | None = None) -> Any: ...


class FunctionDecorator(Protocol[CtxT]):
    """``@query`` / ``@mutation`` / ``@action`` typed to the ctx their handler receives.

    Used bare or with arguments; the handler's first parameter takes ``CtxT``::

        @query
        async def count(ctx: QueryCtx) -> int: ...

        @mutation(args={"body": v.string()})
        async def send(ctx: MutationCtx, body: str) -> Id[Literal["messages"]]: ...
    """

    @overload
    def __call__(
        self, handler: Callable[Concatenate[CtxT, ...], Awaitable[Any]], /
    ) -> FunctionDefinition: ...
    @overload
    def __call__(
        self, *, args: ArgsSpec | None = None, returns: Validator | None = None
    ) -> Callable[[Callable[Concatenate[CtxT, ...], Awaitable[Any]]], FunctionDefinition]: ...

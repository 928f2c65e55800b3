"""Typed ``ctx`` pieces that do not depend on the schema: auth, the action ctx, decorators.

``convex/_generated/server.py`` combines them with the schema's tables into ``QueryCtx``,
``MutationCtx`` and ``ActionCtx``; import those from there::

    from ._generated.server import ActionCtx, action
    from ._generated.api import api

    @action
    async def resend(ctx: ActionCtx, body: str) -> None:
        await ctx.run_mutation(api.messages.send, {"body": body})
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Concatenate, Literal, Never, Protocol, TypeAlias, TypeVar, overload

from pyconvex.server.functions import FunctionDefinition
from pyconvex.server.references import FunctionReference, NoArgs
from pyconvex.values.validators import ObjectValidator, Validator

ArgsT = TypeVar("ArgsT")
ReturnsT = TypeVar("ReturnsT")
CtxT = TypeVar("CtxT", covariant=True)

#: The ``args`` of ``run_query(ref, args)``: the reference's arguments TypedDict. The never-callable
#: alternative makes mypy infer ``ArgsT`` from the reference first and then check the dict
#: literal against it (a plain ``ArgsT`` would be inferred from both and fail on every call).
ArgsOf: TypeAlias = "ArgsT | Callable[[Never], ArgsT]"

#: ``args=`` of a decorator: a dict of validators or ``v.object(...)``.
ArgsSpec = Mapping[str, Validator] | ObjectValidator


class UserIdentity(Protocol):
    """Who is calling: ``await ctx.auth.get_user_identity()`` (None when unauthenticated).

    ``token_identifier``, ``subject`` and ``issuer`` are always set; the standard OpenID Connect
    claims are in snake_case and None when the token lacks them; ``claims`` holds the rest.
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
    def claims(self) -> Mapping[str, Any]: ...


class Auth(Protocol):
    """``ctx.auth``: ``identity = await ctx.auth.get_user_identity()``."""

    async def get_user_identity(self) -> UserIdentity | None:
        """The caller's identity, or None when the call carries no valid token."""
        ...


#: Something that names a function without a generated reference.
FunctionName = str | FunctionDefinition


class ActionCtx(Protocol):
    """``ctx`` in an action: call queries, mutations and actions (each its own transaction).

    With a generated reference the arguments and the result are typed::

        n = await ctx.run_query(api.messages.count, {"channel": channel})
    """

    @property
    def auth(self) -> Auth: ...
    @property
    def storage(self) -> Any: ...
    @property
    def scheduler(self) -> Any: ...

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

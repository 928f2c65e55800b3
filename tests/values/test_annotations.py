"""Tests for pyconvex.values.annotations: validators from type annotations."""

from __future__ import annotations

import datetime
import typing
from typing import Annotated, Any, Literal, NotRequired, Optional, Required, TypedDict

import pytest

from pyconvex.values import (
    Id,
    Int64,
    IntValidator,
    args_validator_from_signature,
    returns_validator_from_signature,
    v,
    validator_from_annotation,
)
from pyconvex.values.value import Unset


class Reaction(TypedDict):
    user: str
    emoji: str
    note: NotRequired[str]


class Partial(TypedDict, total=False):
    a: str
    b: Required[float]


@pytest.mark.parametrize(
    ("annotation", "expected"),
    [
        (str, v.string()),
        (float, v.float64()),
        (int, IntValidator()),
        (bool, v.boolean()),
        (bytes, v.bytes()),
        (None, v.null()),
        (type(None), v.null()),
        (Int64, v.int64()),
        (Any, v.any()),
        (typing.Any, v.any()),
        (list[str], v.array(v.string())),
        (list, v.array(v.any())),
        (dict[str, float], v.record(v.string(), v.float64())),
        (dict[Id["users"], float], v.record(v.id("users"), v.float64())),  # noqa: F821
        (Literal["a"], v.literal("a")),
        (Literal["a", "b"], v.union(v.literal("a"), v.literal("b"))),
        (Literal[1], v.literal(1.0)),
        (str | None, v.union(v.string(), v.null())),
        (Optional[str], v.union(v.string(), v.null())),  # noqa: UP045
        (None | str, v.union(v.string(), v.null())),
        (str | float, v.union(v.string(), v.float64())),
        (Id["messages"], v.id("messages")),
        (Id[Literal["messages"]], v.id("messages")),
        (Annotated[str, "doc"], v.string()),
        (Annotated[str, v.id("x")], v.id("x")),
        (
            list[Reaction],
            v.array(
                v.object({"user": v.string(), "emoji": v.string(), "note": v.optional(v.string())})
            ),
        ),
        (Partial, v.object({"a": v.optional(v.string()), "b": v.float64()})),
    ],
)
def test_validator_from_annotation(annotation: object, expected: object) -> None:
    assert validator_from_annotation(annotation) == expected


def test_id_annotation_repr() -> None:
    assert repr(validator_from_annotation(Id["messages"])) == 'v.id("messages")'


def test_int_annotation_rejects_fractions() -> None:
    validator = validator_from_annotation(int)
    assert validator.validate(4.0) == 4
    assert validator.to_json() == {"type": "number"}
    with pytest.raises(Exception, match=r"must be int \(a whole float64 number\), got float64 2.5"):
        validator.validate(2.5)


def test_unsupported_annotation_names_where_and_lists_supported() -> None:
    with pytest.raises(TypeError) as info:
        validator_from_annotation(datetime.datetime, "messages:send parameter 'when'")
    message = str(info.value)
    assert message.startswith(
        "messages:send parameter 'when': the annotation datetime is not supported; "
        "supported annotations are str, float, int"
    )
    assert 'Id["table"]' in message


@pytest.mark.parametrize(
    ("annotation", "fragment"),
    [
        (set[str], "set[str] is not supported"),
        (tuple[str, int], "is not supported"),
        (dict[int, str], "dict keys must be str"),
        (Id, 'Id needs a table name: Id["messages"]'),
        (Literal[b"x"], "is not a str, number or bool"),
    ],
)
def test_unsupported_annotations(annotation: object, fragment: str) -> None:
    with pytest.raises(TypeError, match="not supported") as info:
        validator_from_annotation(annotation, "f")
    assert fragment in str(info.value)


def test_id_rejects_non_table_arguments() -> None:
    with pytest.raises(TypeError, match=r"Id\[...\] takes a table name"):
        Id[int]


async def send(
    ctx: object,
    # ruff's UP037 would unquote Id["channels"] in a `from __future__` module (and break it);
    # Id[Literal["channels"]] is the spelling every tool understands.
    channel: Id["channels"],  # noqa: F821, UP037
    body: str,
    count: int,
    reactions: list[Reaction],
    when: float | None = None,
    anything=None,  # type: ignore[no-untyped-def]
) -> Id[Literal["messages"]]:
    raise NotImplementedError


def test_args_validator_from_signature() -> None:
    assert args_validator_from_signature(send, "messages:send") == v.object(
        {
            "channel": v.id("channels"),
            "body": v.string(),
            "count": IntValidator(),
            "reactions": v.array(
                v.object({"user": v.string(), "emoji": v.string(), "note": v.optional(v.string())})
            ),
            "when": v.optional(v.union(v.float64(), v.null())),
            "anything": v.optional(v.any()),
        }
    )


def test_returns_validator_from_signature() -> None:
    assert returns_validator_from_signature(send) == v.id("messages")

    async def nothing(ctx: object) -> None: ...

    async def unannotated(ctx):  # type: ignore[no-untyped-def]
        return 1

    assert returns_validator_from_signature(nothing) == v.null()
    assert returns_validator_from_signature(unannotated) is None


def test_signature_errors() -> None:
    async def star(ctx: object, *names: str) -> None: ...

    async def kw(ctx: object, **extra: str) -> None: ...

    async def no_ctx() -> None: ...

    async def bad(ctx: object, when: datetime.date) -> None: ...

    with pytest.raises(TypeError, match=r"messages:f: \*names is not supported"):
        args_validator_from_signature(star, "messages:f")
    with pytest.raises(TypeError, match=r"messages:f: \*\*extra is not supported"):
        args_validator_from_signature(kw, "messages:f")
    with pytest.raises(TypeError, match="takes ctx as its first parameter"):
        args_validator_from_signature(no_ctx, "messages:f")
    with pytest.raises(TypeError, match="messages:f parameter 'when': the annotation date"):
        args_validator_from_signature(bad, "messages:f")


def test_unresolvable_annotation_names_the_function() -> None:
    async def f(ctx: object, x: NotDefinedAnywhere) -> None: ...  # type: ignore[name-defined]  # noqa: F821

    with pytest.raises(TypeError, match="messages:f: cannot resolve the type annotations of"):
        args_validator_from_signature(f, "messages:f")


def test_annotations_without_future_import() -> None:
    namespace: dict[str, Any] = {}
    exec(
        "from pyconvex.values import Id\n"
        "async def g(ctx, a: Id['users'], b: list[int] = []) -> dict[str, float]: ...\n",
        namespace,
    )
    g = namespace["g"]
    assert args_validator_from_signature(g) == v.object(
        {"a": v.id("users"), "b": v.optional(v.array(IntValidator()))}
    )
    assert returns_validator_from_signature(g) == v.record(v.string(), v.float64())


_T = typing.TypeVar("_T")


class _Note(TypedDict):
    body: str


class _Box(TypedDict, typing.Generic[_T]):
    item: _T
    items: list[_T]
    maybe: _T | None


def test_generic_typed_dict_with_its_arguments() -> None:
    from pyconvex.server.db import PaginationResult

    assert (
        validator_from_annotation(_Box[_Note]).to_json()
        == v.object(
            {
                "item": v.object({"body": v.string()}),
                "items": v.array(v.object({"body": v.string()})),
                "maybe": v.union(v.object({"body": v.string()}), v.null()),
            }
        ).to_json()
    )
    page = validator_from_annotation(PaginationResult[_Note])
    assert page.validate({"page": [{"body": "x"}], "isDone": True, "continueCursor": "c"}, "")


class _Patch(TypedDict, total=False):
    body: str
    edited_at: float | Unset


def test_unset_in_a_union_means_a_field_that_may_be_left_out() -> None:
    assert (
        validator_from_annotation(_Patch).to_json()
        == v.object(
            {"body": v.optional(v.string()), "edited_at": v.optional(v.float64())}
        ).to_json()
    )
    assert (
        validator_from_annotation(str | Unset | None).to_json()
        == v.union(v.string(), v.null()).to_json()
    )

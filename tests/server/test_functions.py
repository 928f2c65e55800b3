"""The function decorators: kinds and visibility, bare and called forms, argument validators
given or derived from annotations, return validators, and their errors."""

from __future__ import annotations

from typing import Any, Literal

import pytest

from pyconvex import (
    FunctionDefinition,
    Id,
    Int64,
    action,
    internal_action,
    internal_mutation,
    internal_query,
    mutation,
    query,
    v,
)

DECORATORS = [
    (query, "query", "public"),
    (mutation, "mutation", "public"),
    (action, "action", "public"),
    (internal_query, "query", "internal"),
    (internal_mutation, "mutation", "internal"),
    (internal_action, "action", "internal"),
]


@pytest.mark.parametrize(("deco", "kind", "visibility"), DECORATORS)
def test_bare_and_called_decorators(deco: Any, kind: str, visibility: str) -> None:
    async def handler(ctx: Any) -> None: ...

    for fn in (deco(handler), deco()(handler), deco(args={})(handler)):
        assert isinstance(fn, FunctionDefinition)
        assert (fn.kind, fn.visibility) == (kind, visibility)
        assert fn.handler is handler and fn.name == "handler"
        assert fn.path == ""  # filled in when the functions directory is loaded
        assert kind in repr(fn) and visibility in repr(fn)


def test_decorator_names() -> None:
    assert [d.__name__ for d, _, _ in DECORATORS] == [
        "query",
        "mutation",
        "action",
        "internal_query",
        "internal_mutation",
        "internal_action",
    ]
    assert all(d.__doc__ for d, _, _ in DECORATORS)


def test_explicit_args_dict_or_object_validator() -> None:
    @query(args={"body": v.string(), "n": v.optional(v.float64())})
    async def a(ctx: Any, body: str, n: float | None = None) -> None: ...

    obj = v.object({"body": v.string()})

    @mutation(args=obj)
    async def b(ctx: Any, body: Any) -> None: ...

    assert a.args is not None and a.args.to_json() == {
        "type": "object",
        "value": {
            "body": {"fieldType": {"type": "string"}, "optional": False},
            "n": {"fieldType": {"type": "number"}, "optional": True},
        },
    }
    assert b.args is obj


def test_args_derived_from_annotations() -> None:
    @query
    async def f(
        ctx: Any,
        channel: Id[Literal["channels"]],
        body: str,
        count: Int64,
        tags: list[str],
        mode: Literal["a", "b"],
        note: str | None,
        limit: int = 10,
        extra: dict[str, float] | None = None,
    ) -> list[str]: ...

    assert f.args is not None
    fields = f.args.to_json()["value"]
    assert fields["channel"] == {
        "fieldType": {"type": "id", "tableName": "channels"},
        "optional": False,
    }
    assert fields["body"]["fieldType"] == {"type": "string"}
    assert fields["count"]["fieldType"] == {"type": "bigint"}
    assert fields["tags"]["fieldType"] == {"type": "array", "value": {"type": "string"}}
    assert fields["mode"]["fieldType"]["type"] == "union"
    # X | None is nullable but required; a default makes it optional.
    assert fields["note"]["optional"] is False
    assert {"type": "null"} in fields["note"]["fieldType"]["value"]
    assert fields["limit"]["optional"] is True and fields["extra"]["optional"] is True
    assert f.returns is not None
    assert f.returns.to_json() == {"type": "array", "value": {"type": "string"}}


def test_int_annotation_validates_integral_float64() -> None:
    @query
    async def f(ctx: Any, n: int) -> None: ...

    assert f.args is not None
    assert f.args.validate({"n": 3.0}, "") == {"n": 3}
    assert type(f.args.validate({"n": 3.0}, "")["n"]) is int
    with pytest.raises(ValueError, match=r"\.n"):
        f.args.validate({"n": 3.5}, "")


def test_unannotated_parameters_accept_any_value() -> None:
    @query
    async def f(ctx, x, y=None):  # type: ignore[no-untyped-def]
        ...

    assert f.args is not None
    assert f.args.validate({"x": [1.0, "a"]}, "") == {"x": [1.0, "a"]}
    assert f.returns is None


def test_returns_validator_overrides_annotation() -> None:
    @query(returns=v.float64())
    async def f(ctx: Any) -> str: ...

    assert f.returns is not None and f.returns.to_json() == {"type": "number"}


def test_handler_without_ctx_is_an_error() -> None:
    async def no_params() -> None: ...

    with pytest.raises(
        TypeError, match=r"takes ctx as its first parameter.*async def no_params\(ctx"
    ):
        query(no_params)


def test_bad_args_type_is_an_error() -> None:
    async def f(ctx: Any) -> None: ...

    with pytest.raises(TypeError, match=r"args= takes a dict of validators.*got list"):
        mutation(args=["body"])(f)  # type: ignore[arg-type]


def test_non_callable_is_an_error() -> None:
    with pytest.raises(TypeError, match="@query decorates a function"):
        query(42)  # type: ignore[arg-type]


class Custom:
    pass


def test_unsupported_annotation_names_the_parameter() -> None:
    async def f(ctx: Any, thing: Custom) -> None: ...

    with pytest.raises(Exception, match="thing") as e:
        query(f)
    assert "str" in str(e.value)  # lists what is supported


def test_unresolvable_annotation_says_what_to_do() -> None:
    class Local:
        pass

    async def f(ctx: Any, thing: Local) -> None: ...

    with pytest.raises(Exception, match="import every type the annotations name at module level"):
        query(f)

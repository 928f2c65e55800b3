"""The typed ctx Protocols describe the runtime objects handlers really receive."""

from __future__ import annotations

from typing import TypedDict

from pyconvex.codegen.server_module import server_plan
from pyconvex.runtime.functions.ctx_impl import ActionCtx, Auth, MutationCtx, QueryCtx
from pyconvex.runtime.query.database_impl import DatabaseReader, DatabaseWriter, SystemReader
from pyconvex.runtime.query.filter import FilterBuilder
from pyconvex.runtime.query.index_range import IndexRangeBuilder
from pyconvex.runtime.query.query_impl import Query
from pyconvex.server import ctx, db
from pyconvex.server.pagination import pagination_opts_validator, pagination_result_validator
from pyconvex.values import v, validator_from_annotation


def _members(protocol: type) -> set[str]:
    names: set[str] = set()
    for klass in protocol.__mro__:
        if klass.__module__.startswith("pyconvex.server"):
            names |= {n for n in vars(klass) if not n.startswith("_") or n == "__aiter__"}
    return names


def _generated_members(name: str) -> set[str]:
    plan = server_plan([])
    for block in plan.blocks:
        for statement in block:
            if getattr(statement, "name", None) == name:
                return {m.name for group in statement.methods for m in group}  # type: ignore[attr-defined]
    raise AssertionError(name)


def test_query_builder_protocols_match_the_runtime_classes() -> None:
    for protocol, runtime in [
        (db.QueryInitializer, Query),
        (db.IndexRangeBuilder, IndexRangeBuilder),
        (db.FilterBuilder, FilterBuilder),
        (db.SystemReader, SystemReader),
        (ctx.Auth, Auth),
    ]:
        missing = {n for n in _members(protocol) if not hasattr(runtime, n)}
        assert not missing, f"{runtime.__name__} lacks {missing} of {protocol.__name__}"


def test_action_ctx_protocol_matches_the_runtime_class() -> None:
    for name in ("run_query", "run_mutation", "run_action", "auth", "storage", "scheduler"):
        assert name in ActionCtx.__slots__ or hasattr(ActionCtx, name), name


def test_generated_database_and_ctx_protocols_match_the_runtime() -> None:
    reader = _generated_members("DatabaseReader")
    assert reader == {"system", "get", "query", "normalize_id"}
    assert all(n in DatabaseReader.__slots__ or hasattr(DatabaseReader, n) for n in reader)
    writer = _generated_members("DatabaseWriter")
    assert all(hasattr(DatabaseWriter, n) for n in writer)
    assert _generated_members("QueryCtx") == set(QueryCtx.__slots__)
    assert _generated_members("MutationCtx") == set(MutationCtx.__slots__)


def test_pagination_options_annotation_is_the_pagination_validator() -> None:
    assert validator_from_annotation(db.PaginationOptions) == pagination_opts_validator


def test_pagination_result_annotation_is_the_pagination_result_validator() -> None:
    class Item(TypedDict):
        n: float

    annotated = validator_from_annotation(db.PaginationResult[Item])
    assert annotated == pagination_result_validator(v.object({"n": v.float64()}))
    assert set(annotated.fields) == {
        "page",
        "isDone",
        "continueCursor",
        "splitCursor",
        "pageStatus",
    }


def test_storage_and_scheduler_protocols_match_the_runtime_classes() -> None:
    from pyconvex.runtime.functions import file_storage, scheduler

    for protocol, runtime in [
        (ctx.StorageReader, file_storage.StorageReader),
        (ctx.StorageWriter, file_storage.StorageWriter),
        (ctx.StorageActionWriter, file_storage.ActionStorage),
        (ctx.Scheduler, scheduler.TransactionScheduler),
        (ctx.Scheduler, scheduler.ActionScheduler),
    ]:
        missing = {n for n in _members(protocol) if not hasattr(runtime, n)}
        assert not missing, f"{runtime.__name__} lacks {missing} of {protocol.__name__}"
    assert hasattr(ActionCtx, "run_blocking")


def test_the_user_identity_protocol_matches_the_one_runtime_class() -> None:
    from pyconvex.runtime.auth.identity import UserIdentity
    from pyconvex.runtime.auth.tokens import identity_from_claims

    claims = {"iss": "https://i", "sub": "u1", "name": "Ada", "picture": "https://p",
              "email_verified": True, "zoneinfo": "Europe/Paris", "org": "acme"}  # fmt: skip
    identity = identity_from_claims(claims)
    assert isinstance(identity, UserIdentity)
    for name in _members(ctx.UserIdentity):
        assert hasattr(identity, name), f"UserIdentity lacks {name} of the ctx Protocol"
    assert (identity.token_identifier, identity.picture_url, identity.timezone) == (
        "https://i|u1", "https://p", "Europe/Paris",
    )  # fmt: skip
    assert identity.family_name is None and identity["org"] == identity.claims["org"] == "acme"

"""``api`` / ``internal`` at run time: references by path, nested modules, unknown names."""

from __future__ import annotations

import pytest

from pyconvex.runtime.functions.deployment import function_ref_path
from pyconvex.server.references import FunctionReference, build_api


def test_references_are_their_paths() -> None:
    api = build_api("public", {"messages:send": "mutation", "admin/users:ban": "mutation"})
    assert api.messages.send.path == "messages:send"
    assert str(api.admin.users.ban) == "admin/users:ban"
    assert function_ref_path(api.admin.users.ban) == "admin/users:ban"
    assert api.messages.send.kind == "mutation"
    assert api.messages.send.visibility == "public"
    assert api.messages.send == FunctionReference("messages:send")
    assert dir(api) == ["admin", "messages"]
    assert repr(api.admin.users) == "<api.admin.users: ban>"


def test_unknown_names_are_references_like_convex_any_api() -> None:
    # So module-level references to functions codegen has not seen yet still import.
    internal = build_api("internal", {"jobs:cleanup": "mutation"})
    assert function_ref_path(internal.jobs.compact) == "jobs:compact"
    assert function_ref_path(internal.reports.daily.send) == "reports/daily:send"
    assert internal.reports.daily.kind is None
    with pytest.raises(AttributeError):
        _ = internal._private


def test_a_module_cannot_also_be_a_function() -> None:
    with pytest.raises(ValueError, match="admin:users"):
        build_api("public", {"admin:users": "query", "admin/users:ban": "mutation"})

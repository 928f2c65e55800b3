"""pyconvex: a reactive backend for Python in the model of Convex.

Write a schema and functions in ``convex/``::

    from pyconvex import define_schema, define_table, mutation, query, v

    schema = define_schema({"messages": define_table({"body": v.string()})})

    @query
    async def list(ctx):
        return await ctx.db.query("messages").order("desc").take(50)

    @mutation(args={"body": v.string()})
    async def send(ctx, body):
        return await ctx.db.insert("messages", {"body": body})

then ``pyconvex dev`` serves them to the official Convex clients.
"""

from typing import TYPE_CHECKING, Any

from pyconvex.errors import ConvexError
from pyconvex.server.crons import Crons
from pyconvex.server.functions import (
    FunctionDefinition,
    action,
    internal_action,
    internal_mutation,
    internal_query,
    mutation,
    query,
)
from pyconvex.server.http_router import HttpRouter, cors_headers, http_action
from pyconvex.server.pagination import pagination_opts_validator, pagination_result_validator
from pyconvex.server.schema import SchemaDefinition, TableDefinition, define_schema, define_table
from pyconvex.values import UNSET, Int64, Value
from pyconvex.values.annotations import Id
from pyconvex.values.validators import Validator, v

if TYPE_CHECKING:
    from pyconvex.runtime.functions.env_vars import env

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # ``env`` reads the running deployment, so it lives in the runtime, which importing
    # ``pyconvex`` (or ``pyconvex.values``) must not load: it is imported on first use.
    if name == "env":
        from pyconvex.runtime.functions.env_vars import env

        return env
    raise AttributeError(f"module 'pyconvex' has no attribute {name!r}")


__all__ = [
    "UNSET",
    "ConvexError",
    "Crons",
    "FunctionDefinition",
    "HttpRouter",
    "Id",
    "Int64",
    "SchemaDefinition",
    "TableDefinition",
    "Validator",
    "Value",
    "__version__",
    "action",
    "cors_headers",
    "define_schema",
    "define_table",
    "env",
    "http_action",
    "internal_action",
    "internal_mutation",
    "internal_query",
    "mutation",
    "pagination_opts_validator",
    "pagination_result_validator",
    "query",
    "v",
]

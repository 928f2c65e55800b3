"""Scheduled functions run as nobody: a signed-in user's mutation or action schedules a mutation
and an action, and both see no identity (as in Convex: the scheduler does not pass it on)."""

from __future__ import annotations

from support.deployment import DeploymentFactory, ok

from pyconvex.runtime.auth.identity import UserIdentity

FUNCTIONS = {
    "who.py": """
        from pyconvex import action, internal_action, internal_mutation, mutation, query


        async def _who(ctx):
            identity = await ctx.auth.get_user_identity()
            return None if identity is None else identity.subject


        @internal_mutation
        async def record(ctx, where: str) -> None:
            await ctx.db.insert("seen", {"where": where, "who": await _who(ctx)})


        @internal_action
        async def record_from_action(ctx, where: str) -> None:
            await ctx.run_mutation("who:record_as", {"where": where, "who": await _who(ctx)})


        @internal_mutation
        async def record_as(ctx, where: str, who: str | None) -> None:
            await ctx.db.insert("seen", {"where": where, "who": who})


        @mutation
        async def start(ctx) -> None:
            await ctx.db.insert("seen", {"where": "caller", "who": await _who(ctx)})
            await ctx.scheduler.run_after(0, "who:record", {"where": "scheduled mutation"})
            await ctx.scheduler.run_after(0, "who:record_from_action", {"where": "scheduled action"})


        @action
        async def start_from_action(ctx) -> None:
            await ctx.scheduler.run_after(0, "who:record", {"where": "from an action"})


        @query
        async def seen(ctx):
            return sorted((d["where"], d["who"]) for d in await ctx.db.query("seen").collect())
    """
}


async def test_scheduled_functions_see_no_identity(deployment: DeploymentFactory) -> None:
    dep = await deployment(FUNCTIONS)
    ada = UserIdentity({"subject": "ada", "issuer": "https://issuer.example.com"})
    ok(await dep.run_mutation("who:start", {}, identity=ada))
    ok(await dep.run_action("who:start_from_action", {}, identity=ada))
    for _ in range(10):  # a job may schedule nothing further; bounded anyway
        await dep.jobs.drain()
        if len(ok(dep.run_query("who:seen"))) == 4:
            break
    assert ok(dep.run_query("who:seen")) == [
        ["caller", "ada"],
        ["from an action", None],
        ["scheduled action", None],
        ["scheduled mutation", None],
    ]

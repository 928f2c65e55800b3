"""The deployment's side of ``pyconvex deploy``: take a bundle of code, show what it changes,
and switch to it — with the dev loop's push (``DevLoop.swap_in``), so ``serve`` and ``dev``
take deploys the same way their own code is pushed::

    deployer = Deployer(loop, CodeStore(data_dir), persist=True)
    deployment.deployer = deployer               # the admin routes find it there
    plan = await deployer.plan({"bundle": ...})          # changes nothing
    outcome = await deployer.apply({"bundle": ..., "base": plan["base"]})

:meth:`Deployer.plan` stages the bundle (``CodeStore.stage``), imports it under a package of
its own, diffs it against the code serving and checks the stored documents against its schema.
:meth:`Deployer.apply` refuses if the code serving is no longer the plan's ``base``, then pushes
the staged code: the schema checked again, new indexes backfilled while the old code serves,
one synchronous swap that re-runs every subscription (clients stay connected), then — only
once it serves — the code is named the current one on disk (``persist``: ``serve``; ``dev``
serves its files again after a restart). A refused or failed deploy changes nothing.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from rich.markup import escape

from pyconvex.dev.bundle import Bundle, BundleError, code_hash
from pyconvex.dev.code_store import CodeStore
from pyconvex.dev.deploy_plan import DeployPlan, violation_json
from pyconvex.dev.loop import DevLoop
from pyconvex.runtime.functions.loader import (
    LoadedFunctions,
    ModuleLoadError,
    load_functions,
    unload,
)
from pyconvex.runtime.functions.schema_push import check_push
from pyconvex.runtime.net.admin_routes import DeployRefused


class Deployer:
    """Takes deploys for the deployment ``loop`` keeps (module docstring)."""

    def __init__(self, loop: DevLoop, store: CodeStore, *, persist: bool) -> None:
        self.loop = loop
        self.store = store
        self.persist = persist
        #: The last bundle planned, imported: applied without importing it again.
        self._staged: tuple[str, LoadedFunctions] | None = None
        self._lock = asyncio.Lock()

    @property
    def serving_hash(self) -> str:
        return code_hash(self.loop.serving)

    async def plan(self, body: Any) -> dict[str, Any]:
        """What deploying ``body["bundle"]`` would change (nothing changes)."""
        bundle = _bundle(body)
        async with self._lock:
            loaded = self._stage(bundle)
            plan = await self._plan(bundle, loaded)
            if plan.violations:  # it cannot be deployed: nothing of it is kept
                self._discard()
                self._prune()
        return plan.to_json()

    async def apply(self, body: Any) -> dict[str, Any]:
        """Deploy ``body["bundle"]`` if the code serving is still ``body["base"]`` (when
        given): ``{"status": "deployed", "plan", "switchMs"}`` or ``{"status": "refused",
        "violations"}``."""
        accepted = time.perf_counter()
        bundle = _bundle(body)
        base = body.get("base")
        if base is not None and not isinstance(base, str):
            raise DeployRefused(400, "BadDeploy", '"base" must be the hash a plan returned.')
        loop = self.loop
        async with self._lock:
            if bundle.hash == self.serving_hash:
                return {"status": "unchanged", "code": bundle.hash, "switchMs": 0.0}
            loaded = self._stage(bundle)
            previous = loop.serving
            base_hash = self.serving_hash
            switched: list[float] = []

            def check_base() -> None:
                if base is not None and base != self.serving_hash:
                    raise DeployRefused(
                        409,
                        "DeploymentChanged",
                        "The deployment's code changed since this deploy was planned (another "
                        "deploy, or a save under `pyconvex dev`). Run pyconvex deploy again to "
                        "see the new differences.",
                    )

            result = await loop.swap_in(
                loaded,
                on_swap=lambda: switched.append(time.perf_counter()),
                precondition=check_base,
            )
            if not result.ok:
                self._discard()
                self._prune()
                return {
                    "status": "refused",
                    "violations": [violation_json(v) for v in result.violations],
                }
            self._staged = None
            if self.persist:
                self.store.commit(bundle.hash)
            self.store.prune({bundle.hash} if self.persist else set())
        switch_ms = (switched[0] - accepted) * 1000 if switched else 0.0
        plan = DeployPlan.build(
            result, previous, loaded, base=base_hash, code=bundle.hash, table_sizes={}
        )
        n = len(loaded.functions)
        loop.out.print(
            f"{loop.name}: deployed {bundle.hash[:12]} in {switch_ms:.0f} ms "
            f"({n} function{'s' if n != 1 else ''}{escape(_summary(plan))})"
        )
        return {"status": "deployed", "code": bundle.hash, "switchMs": switch_ms}

    # -- staging -------------------------------------------------------------------------------

    def _stage(self, bundle: Bundle) -> LoadedFunctions:
        staged = self._staged
        if staged is not None and staged[0] == bundle.hash:
            return staged[1]
        self._discard()
        functions_dir = self.store.stage(bundle)
        try:
            loaded = load_functions(functions_dir)
        except ModuleLoadError as e:
            self._prune()
            raise DeployRefused(400, "ModuleLoadFailed", _load_message(e, functions_dir)) from None
        self._staged = (bundle.hash, loaded)
        return loaded

    def _prune(self) -> None:
        """Remove staged code, keeping the code serving (``persist``)."""
        self.store.prune({self.serving_hash} if self.persist else set())

    def _discard(self) -> None:
        staged, self._staged = self._staged, None
        if staged is None:
            return
        serving = self.loop.serving
        if serving is None or serving.package != staged[1].package:
            unload(staged[1])

    async def _plan(self, bundle: Bundle, loaded: LoadedFunctions) -> DeployPlan:
        loop = self.loop
        deployment = loop.deployment
        assert deployment is not None
        check = await check_push(deployment, loaded, accepted=loop.accepted)
        sizes = {name: len(t.docs) for name, t in deployment.store.tables.items()}
        return DeployPlan.build(
            check,
            loop.serving,
            loaded,
            base=self.serving_hash,
            code=bundle.hash,
            table_sizes=sizes,
        )


def _bundle(body: Any) -> Bundle:
    if not isinstance(body, dict):
        raise DeployRefused(400, "BadDeploy", 'The body must be {"bundle": ..., "base": ...}.')
    try:
        return Bundle.from_json(body.get("bundle"))
    except BundleError as e:
        raise DeployRefused(400, "BadBundle", str(e)) from None


def _load_message(e: ModuleLoadError, functions_dir: Path) -> str:
    """The import failure with paths shown relative to the staged copy (``convex/x.py``)."""
    text = str(e)
    if e.details:
        text += "\n" + e.details
    return text.replace(str(functions_dir.parent) + "/", "")


def _summary(plan: DeployPlan) -> str:
    parts = []
    for n, what in (
        (len(plan.added_functions), "added"),
        (len(plan.changed_functions), "changed"),
        (len(plan.removed_functions), "removed"),
        (len(plan.added_tables), "new tables"),
        (len(plan.added_indexes), "new indexes"),
    ):
        if n:
            parts.append(f"{n} {what}")
    return (": " + ", ".join(parts)) if parts else ""

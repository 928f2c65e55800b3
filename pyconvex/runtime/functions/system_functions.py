"""pyconvex's built-in functions: internal functions under ``_system/`` that the deployment
resolves when no user function has the path (only pyconvex itself and the admin key reach
them): writing environment variables, the scheduler's, the cron jobs' and file storage's
bookkeeping, and the dashboard's views and edits."""

from __future__ import annotations

from pyconvex.runtime.functions import (
    cron_runner,
    dashboard_functions,
    env_vars,
    file_storage,
    scheduler,
)
from pyconvex.server.functions import FunctionDefinition

SYSTEM_FUNCTIONS: dict[str, FunctionDefinition] = {
    **env_vars.SYSTEM_FUNCTIONS,
    **scheduler.FUNCTIONS,
    **cron_runner.FUNCTIONS,
    **file_storage.FUNCTIONS,
    **dashboard_functions.FUNCTIONS,
}

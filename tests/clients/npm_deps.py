"""The pinned npm packages the official-client tests run (tests/clients/package-lock.json).

Shared by tests/clients/conftest.py and tests/cli/test_dev_e2e.py (which loads this file by
path: tests/ is not a package).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

CLIENTS = Path(__file__).resolve().parent
CONVEX_NPM_VERSION = "1.48.0"


def node_with_client_deps(what: str) -> str:
    """The `node` binary, with tests/clients/node_modules installed from the lock file
    (`npm ci` when missing or stale); skips ``what`` when Node or npm is not installed."""
    node_bin, npm_bin = shutil.which("node"), shutil.which("npm")
    if node_bin is None or npm_bin is None:
        pytest.skip(f"node/npm not found on PATH: {what} need Node >= 18")
    installed = CLIENTS / "node_modules" / "convex" / "package.json"
    if not installed.exists() or json.loads(installed.read_text())["version"] != CONVEX_NPM_VERSION:
        done = subprocess.run(
            [npm_bin, "ci", "--no-audit", "--no-fund"],
            cwd=CLIENTS,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode != 0:
            pytest.fail(f"npm ci failed in {CLIENTS}:\n{done.stdout}\n{done.stderr}")
    return node_bin

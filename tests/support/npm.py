"""The pinned npm packages the official-client tests run (tests/clients/package-lock.json).

Shared by tests/clients/conftest.py and tests/dev/test_e2e.py.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

CLIENTS = Path(__file__).resolve().parents[1] / "clients"
CONVEX_NPM_VERSION = "1.48.0"


def node_with_client_deps(what: str) -> str:
    """The `node` binary, with tests/clients/node_modules installed from the lock file
    (`npm ci` when missing or stale); skips ``what`` when Node or npm is not installed."""
    node_bin, npm_bin = shutil.which("node"), shutil.which("npm")
    if node_bin is None or npm_bin is None:
        pytest.skip(f"node/npm not found on PATH: {what} need Node >= 18")
    if not _installed():
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


def _installed() -> bool:
    """Whether node_modules holds every package of package.json at its pinned version."""
    pinned = json.loads((CLIENTS / "package.json").read_text())["dependencies"]
    assert pinned["convex"] == CONVEX_NPM_VERSION
    for name, version in pinned.items():
        manifest = CLIENTS / "node_modules" / name / "package.json"
        if not manifest.exists() or json.loads(manifest.read_text())["version"] != version:
            return False
    return True

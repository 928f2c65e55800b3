"""Headless Chromium for the browser tests: Debian's ``chromium`` (``apt-get install chromium``;
``.ci/run`` installs it), driven by ``playwright-core`` from tests/clients' lock file.

A machine without it skips the browser tests with that reason; set ``PYCONVEX_CHROMIUM`` to
use another Chromium binary. Screenshots go to the test's own directory and, when
``PYCONVEX_SCREENSHOTS`` names a directory (``docs/screenshots`` for the README), there too.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from pyconvex.dev.launcher import DevServer

#: The line `pyconvex dev` prints with the dashboard's one-time sign-in link.
SIGN_IN = re.compile(r"pyconvex dev: dashboard at http://\S+?(/dashboard\?token=\S+)")


def chromium_or_skip() -> str:
    """The Chromium binary the browser tests drive; skips the test when there is none."""
    binary = os.environ.get("PYCONVEX_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(binary).exists():
        pytest.skip(
            "browser tests need Chromium: `apt-get install chromium` (Debian), or set "
            "PYCONVEX_CHROMIUM to a Chromium binary"
        )
    return binary


def sign_in_path(server: DevServer) -> str:
    """The path of the one-time sign-in link ``pyconvex dev`` printed at start."""
    index = server.output.wait_for(SIGN_IN, timeout=10)
    found = SIGN_IN.search(server.output.line(index))
    assert found is not None
    return found.group(1)


def keep_screenshot(path: Path) -> None:
    """Copy ``path`` to ``$PYCONVEX_SCREENSHOTS`` when set (how the README's are made)."""
    target = os.environ.get("PYCONVEX_SCREENSHOTS")
    assert path.exists() and path.stat().st_size > 0, f"no screenshot at {path}"
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / path.name)


def build_frontend(project: Path, node_modules: Path) -> None:
    """Build ``project``'s web frontend with its own ``npm run build`` (type check + Vite),
    on the packages tests/clients installed (the template pins the same versions)."""
    npm = shutil.which("npm")
    assert npm is not None
    (project / "node_modules").symlink_to(node_modules, target_is_directory=True)
    done = subprocess.run(
        [npm, "run", "build"], cwd=project, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"npm run build failed:\n{done.stdout}\n{done.stderr}"
    assert (project / "dist" / "index.html").is_file()

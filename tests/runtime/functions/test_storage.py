"""File storage: Convex's upload flow over a real server (a generated URL, raw bytes POSTed,
{"storageId"} back, single use, expiring), downloads with Content-Type, ETag and ranges, the
_storage system table, ctx.storage in queries/mutations/actions, v.id("_storage"), and blobs
that are content-addressed, written atomically and removed once nothing points to them."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from support.deployment import CommitLog, DeploymentFactory, failure_message, ok

from pyconvex.runtime.functions.deployment import Deployment
from pyconvex.runtime.functions.file_storage import UploadTokenError
from pyconvex.runtime.net.app import serve

FUNCTIONS = {
    "schema.py": """
        from pyconvex import define_schema, define_table, v

        schema = define_schema({
            "photos": define_table({"file": v.id("_storage"), "caption": v.string()}),
        })
    """,
    "files.py": """
        import io

        from pyconvex import action, mutation, query, v


        @mutation
        async def upload_url(ctx) -> str:
            return await ctx.storage.generate_upload_url()


        @mutation(args={"file": v.id("_storage"), "caption": v.string()})
        async def save(ctx, file, caption):
            return await ctx.db.insert("photos", {"file": file, "caption": caption})


        @query(args={"file": v.id("_storage")})
        async def url(ctx, file):
            return await ctx.storage.get_url(file)


        @query
        async def info(ctx, file: str):
            return {
                "metadata": await ctx.storage.get_metadata(file),
                "system": await ctx.db.system.get(file),
                "system_by_table": await ctx.db.system.get("_storage", file),
                "wrong_table": await ctx.db.system.get("_scheduled_functions", file),
                "listed": len(await ctx.db.system.query("_storage").collect()),
            }


        @mutation
        async def remove(ctx, file: str) -> None:
            await ctx.storage.delete(file)


        @action
        async def store_text(ctx, text: str, kind: str) -> str:
            return await ctx.storage.store(text.encode(), content_type=kind)


        @action
        async def store_file_object(ctx, size: int) -> str:
            return await ctx.storage.store(io.BytesIO(b"z" * size))


        @action
        async def store_chunks(ctx, parts: list[str]) -> str:
            async def chunks():
                for part in parts:
                    yield part.encode()

            return await ctx.storage.store(chunks())


        @action
        async def read_back(ctx, file: str):
            data = await ctx.storage.get(file)
            return None if data is None else data.decode()


        @action
        async def remove_from_action(ctx, file: str) -> str | None:
            await ctx.storage.delete(file)
            return await ctx.storage.get_url(file)
    """,
}


def blob_files(root: Path) -> list[Path]:
    return sorted(p for p in (root / "blobs").rglob("*") if p.is_file())


def storage_root(dep: Deployment) -> Path:
    return dep.storage.blobs.root  # type: ignore[union-attr]


async def blobs_settle(dep: Deployment, count: int) -> list[Path]:
    """The blob files, once there are ``count`` (deletions run on a worker thread)."""
    for _ in range(500):
        files = blob_files(storage_root(dep))
        if len(files) == count:
            return files
        await asyncio.sleep(0.01)
    return blob_files(storage_root(dep))


@pytest.fixture
async def served(deployment: DeploymentFactory) -> AsyncIterator[tuple[Deployment, str]]:
    dep = await deployment(FUNCTIONS, persistent=True)
    listening: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()
    server = asyncio.create_task(
        serve(dep, host="127.0.0.1", port=0, on_listening=listening.set_result, stop=stop)
    )
    url = await listening
    try:
        yield dep, url
    finally:
        stop.set()
        await server


async def test_upload_through_a_generated_url_and_download_with_ranges(
    served: tuple[Deployment, str],
) -> None:
    dep, base = served
    data = os.urandom(3 * 1024 * 1024 + 17)  # several chunks
    upload_url = ok(await dep.run_mutation("files:upload_url"))
    assert upload_url.startswith(f"{base}/api/storage/upload?token=")
    async with httpx.AsyncClient(timeout=30) as http:

        async def body() -> AsyncIterator[bytes]:
            for i in range(0, len(data), 100_000):
                yield data[i : i + 100_000]

        r = await http.post(upload_url, content=body(), headers={"content-type": "image/png"})
        assert r.status_code == 200, r.text
        storage_id = r.json()["storageId"]
        assert list(r.json()) == ["storageId"]
        ok(await dep.run_mutation("files:save", {"file": storage_id, "caption": "a cat"}))

        file_url = ok(dep.run_query("files:url", {"file": storage_id}))
        assert file_url == f"{base}/api/storage/{storage_id}"
        r = await http.get(file_url)
        assert r.status_code == 200
        assert hashlib.sha256(r.content).hexdigest() == hashlib.sha256(data).hexdigest()
        sha_hex = hashlib.sha256(data).hexdigest()
        assert r.headers["content-type"] == "image/png"
        assert r.headers["etag"] == f'"{sha_hex}"'
        assert r.headers["content-length"] == str(len(data))
        assert r.headers["accept-ranges"] == "bytes"

        r = await http.get(file_url, headers={"range": "bytes=1000-1999"})
        assert r.status_code == 206 and r.content == data[1000:2000]
        assert r.headers["content-range"] == f"bytes 1000-1999/{len(data)}"
        r = await http.get(file_url, headers={"range": "bytes=-10"})
        assert r.status_code == 206 and r.content == data[-10:]
        r = await http.get(file_url, headers={"range": f"bytes={len(data)}-"})
        assert r.status_code == 416
        r = await http.get(file_url, headers={"if-none-match": f'"{sha_hex}"'})
        assert r.status_code == 304

    info = ok(dep.run_query("files:info", {"file": storage_id}))
    assert info["metadata"] == {
        "storageId": storage_id,
        "sha256": sha_hex,
        "size": float(len(data)),
        "contentType": "image/png",
    }
    system = info["system"]
    assert info["system_by_table"] == system and info["wrong_table"] is None
    assert system["sha256"] == base64.b64encode(hashlib.sha256(data).digest()).decode()
    assert (system["size"], system["contentType"]) == (len(data), "image/png")
    [blob] = blob_files(storage_root(dep))
    assert blob.name == sha_hex and blob.read_bytes() == data


async def test_upload_urls_are_single_use_and_expire(served: tuple[Deployment, str]) -> None:
    dep, base = served
    async with httpx.AsyncClient(timeout=30) as http:
        upload_url = ok(await dep.run_mutation("files:upload_url"))
        assert (await http.post(upload_url, content=b"one")).status_code == 200
        again = await http.post(upload_url, content=b"two")
        assert again.status_code == 403 and again.json()["code"] == "UploadUrlUsed"

        dep.storage.upload_url_ttl_s = -1  # every new URL is already expired
        expired = await http.post(ok(await dep.run_mutation("files:upload_url")), content=b"x")
        assert expired.status_code == 403 and expired.json()["code"] == "UploadUrlExpired"
        assert "generate_upload_url" in expired.json()["message"]

        forged = await http.post(f"{base}/api/storage/upload?token=abc.def", content=b"x")
        assert forged.status_code == 401 and forged.json()["code"] == "InvalidUploadUrl"
        fresh = ok(await dep.run_mutation("files:upload_url"))
        for method in ("GET", "PUT"):  # a URL used the wrong way says how to use it
            wrong = await http.request(method, fresh, content=b"x" if method == "PUT" else None)
            assert wrong.status_code == 405 and wrong.headers["allow"] == "POST"
            assert (
                f"takes a POST of the file's raw bytes, not a {method}" in wrong.json()["message"]
            )
        missing = await http.get(f"{base}/api/storage/kg2xbzqptbkz6jtakn7q2nanch6kzcsb")
        assert missing.status_code == 404
    assert len(blob_files(storage_root(dep))) == 1  # refused uploads leave nothing behind


async def test_upload_urls_outlive_a_restart_and_still_work_once(
    deployment: DeploymentFactory,
) -> None:
    """As in Convex, an upload URL is good for an hour: a client that got one just before a
    restart (or a deploy to ``pyconvex serve``) can still use it, once."""
    dep = await deployment(FUNCTIONS, persistent=True)
    first = ok(await dep.run_mutation("files:upload_url")).partition("token=")[2]
    second = ok(await dep.run_mutation("files:upload_url")).partition("token=")[2]
    dep.storage.redeem(second)
    await dep.close()
    dep = await deployment(FUNCTIONS, persistent=True)
    dep.storage.redeem(first)  # made before the restart
    for used in (first, second):
        with pytest.raises(UploadTokenError) as refused:
            dep.storage.redeem(used)
        assert refused.value.code == "UploadUrlUsed"
    await dep.close()
    dep = await deployment(FUNCTIONS, persistent=True)
    with pytest.raises(UploadTokenError) as again:
        dep.storage.redeem(first)
    assert again.value.code == "UploadUrlUsed"


async def test_a_digest_header_is_checked(served: tuple[Deployment, str]) -> None:
    dep, _ = served
    wrong = base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    async with httpx.AsyncClient(timeout=30) as http:
        r = await http.post(
            ok(await dep.run_mutation("files:upload_url")),
            content=b"payload",
            headers={"digest": f"sha-256={wrong}"},
        )
    assert r.status_code == 400 and r.json()["code"] == "ChecksumMismatch"
    assert dep.store.tables["_storage"].docs == {}
    assert await blobs_settle(dep, 0) == []


async def test_actions_store_read_and_delete_files(deployment: DeploymentFactory) -> None:
    dep = await deployment(FUNCTIONS)
    text_id = ok(await dep.run_action("files:store_text", {"text": "hello", "kind": "text/plain"}))
    assert ok(await dep.run_action("files:read_back", {"file": text_id})) == "hello"
    big_id = ok(await dep.run_action("files:store_file_object", {"size": 600_000}))
    chunked_id = ok(await dep.run_action("files:store_chunks", {"parts": ["he", "llo"]}))
    info = ok(dep.run_query("files:info", {"file": big_id}))
    assert info["metadata"]["size"] == 600_000 and info["metadata"]["contentType"] is None
    assert "contentType" not in info["system"] and info["listed"] == 3
    # "hello" twice: two documents, one blob.
    assert len(blob_files(storage_root(dep))) == 2
    assert ok(await dep.run_action("files:remove_from_action", {"file": text_id})) is None
    assert len(blob_files(storage_root(dep))) == 2  # still used by the chunked one
    ok(await dep.run_mutation("files:remove", {"file": chunked_id}))
    assert [p.stat().st_size for p in await blobs_settle(dep, 1)] == [600_000]
    assert ok(await dep.run_action("files:read_back", {"file": chunked_id})) is None


async def test_get_url_is_reactive_and_ids_are_checked(deployment: DeploymentFactory) -> None:
    dep = await deployment(FUNCTIONS)
    file_id = ok(await dep.run_action("files:store_text", {"text": "x", "kind": "text/plain"}))
    commits = CommitLog(dep)
    before = dep.run_query("files:url", {"file": file_id})
    assert ok(before).endswith(f"/api/storage/{file_id}")
    r = await dep.run_mutation("files:remove", {"file": file_id})
    assert before.read_set is not None and before.read_set.intersects(commits.for_ts(r.ts).writes)  # type: ignore[arg-type]
    assert ok(dep.run_query("files:url", {"file": file_id})) is None
    photo = ok(await dep.run_action("files:store_text", {"text": "y", "kind": "text/plain"}))
    photo_doc = ok(await dep.run_mutation("files:save", {"file": photo, "caption": "c"}))
    message = failure_message(dep.run_query("files:url", {"file": photo_doc}))
    assert "_storage" in message  # v.id("_storage") refuses an id of another table
    message = failure_message(dep.run_query("files:info", {"file": photo_doc}))
    assert "takes the id of a stored file" in message


async def test_unreferenced_blobs_are_swept_at_start(deployment: DeploymentFactory) -> None:
    dep = await deployment(FUNCTIONS, persistent=True)
    kept = ok(await dep.run_action("files:store_text", {"text": "keep", "kind": "text/plain"}))
    root = storage_root(dep)
    await dep.close()
    orphan = root / "blobs" / "ab" / ("ab" + "0" * 62)
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"left by a crash between the blob and its document")
    (root / "tmp" / "partial").write_bytes(b"an upload that never finished")

    dep = await deployment(persistent=True)
    assert [p.name for p in blob_files(root)] == [hashlib.sha256(b"keep").hexdigest()]
    assert list((root / "tmp").iterdir()) == []
    assert ok(await dep.run_action("files:read_back", {"file": kept})) == "keep"

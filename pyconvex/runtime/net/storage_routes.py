"""File storage over HTTP, on the API port (Convex's routes)::

    POST /api/storage/upload?token=...   raw bytes (Content-Type kept) -> {"storageId": "..."}
    GET  /api/storage/<storageId>        the file: Content-Type, ETag, Digest, Range requests

Both stream: an upload goes to disk chunk by chunk while it is hashed, a download is read from
disk chunk by chunk. An upload may announce its checksum (``Digest: sha-256=<base64>``); bytes
that do not match it are refused.
"""

from __future__ import annotations

import base64
import binascii
import json
import re

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from pyconvex.runtime.functions.file_storage import (
    FileStorage,
    StorageContentError,
    UploadTokenError,
    hex_sha256,
)

#: Where a client POSTs a file to an upload URL (no body limit: it streams to disk).
UPLOAD_PATH = "/api/storage/upload"
#: Files never change under their id: browsers may keep them (Convex's 30 days).
CACHE_CONTROL = "private, max-age=2592000"
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def storage_routes(deployment: object) -> list[BaseRoute]:
    """The storage routes of ``deployment`` (none for stand-ins without file storage)."""
    storage = getattr(deployment, "storage", None)
    if not isinstance(storage, FileStorage):
        return []
    routes = _StorageRoutes(storage)
    return [
        Route(UPLOAD_PATH, routes.upload, methods=["POST"]),
        # (before the download route: "upload" is no storage id)
        Route(UPLOAD_PATH, _upload_method, methods=["GET", "HEAD", "PUT", "PATCH", "DELETE"]),
        Route("/api/storage/{storage_id}", routes.download, methods=["GET", "HEAD"]),
    ]


async def _upload_method(request: Request) -> Response:
    response = _error(
        405,
        "MethodNotAllowed",
        f"An upload URL takes a POST of the file's raw bytes, not a {request.method} (e.g. "
        "fetch(url, {method: 'POST', body: file}) or curl -X POST --data-binary @file URL).",
    )
    response.headers["allow"] = "POST"
    return response


def _error(status: int, code: str, message: str) -> Response:
    body = json.dumps({"code": code, "message": message})
    return Response(body, status_code=status, media_type="application/json")


class _StorageRoutes:
    def __init__(self, storage: FileStorage) -> None:
        self.storage = storage

    async def upload(self, request: Request) -> Response:
        token = request.query_params.get("token")
        if not token:
            return _error(
                400,
                "MissingUploadToken",
                "POST the file to the URL ctx.storage.generate_upload_url() returned (it "
                "carries a ?token=).",
            )
        try:
            self.storage.redeem(token)
        except UploadTokenError as e:
            return _error(401 if e.code == "InvalidUploadUrl" else 403, e.code, str(e))
        try:
            expected = _digest(request.headers.get("digest"))
        except ValueError as e:
            return _error(400, "BadDigestHeader", str(e))
        content_type = request.headers.get("content-type") or None
        try:
            storage_id = await self.storage.store(request.stream(), content_type, expected)
        except StorageContentError as e:
            return _error(400, "ChecksumMismatch", str(e))
        except ClientDisconnect:
            return _error(400, "UploadIncomplete", "The client went away before the file ended.")
        return Response(json.dumps({"storageId": storage_id}), media_type="application/json")

    async def download(self, request: Request) -> Response:
        storage_id = request.path_params["storage_id"]
        doc = self.storage.document(storage_id)
        if doc is None:
            return _error(
                404,
                "FileNotFound",
                f"No stored file {storage_id!r} (it was deleted, or the id is not a _storage "
                "id). Get URLs with ctx.storage.get_url(storage_id).",
            )
        size = int(doc["size"])
        sha_hex = hex_sha256(str(doc["sha256"]))
        etag = f'"{sha_hex}"'
        headers = {
            "etag": etag,
            "digest": f"sha-256={doc['sha256']}",
            "accept-ranges": "bytes",
            "cache-control": CACHE_CONTROL,
        }
        media_type = str(doc.get("contentType") or "application/octet-stream")
        if _matches(request.headers.get("if-none-match"), etag):
            return Response(status_code=304, headers=headers)
        start, end, status = 0, size, 200
        wanted = request.headers.get("range")
        if_range = request.headers.get("if-range")
        if wanted is not None and (if_range is None or if_range == etag):
            parsed = _range(wanted, size)
            if parsed is None:
                headers["content-range"] = f"bytes */{size}"
                return Response(status_code=416, headers=headers)
            if parsed is not _WHOLE:
                start, end = parsed
                status = 206
                headers["content-range"] = f"bytes {start}-{end - 1}/{size}"
        headers["content-length"] = str(end - start)
        if request.method == "HEAD" or start == end:
            return Response(status_code=status, headers=headers, media_type=media_type)
        # Content-Length is set: the body streams from disk without chunked encoding.
        body = self.storage.read(doc, start, end)
        return StreamingResponse(body, status_code=status, headers=headers, media_type=media_type)


def _digest(header: str | None) -> str | None:
    """The sha256 (hex) of a ``Digest: sha-256=<base64>`` header, if there is one."""
    if not header:
        return None
    for part in header.split(","):
        algorithm, _, value = part.strip().partition("=")
        if algorithm.lower() == "sha-256":
            try:
                raw = base64.b64decode(value.strip(), validate=True)
            except (binascii.Error, ValueError):
                raw = b""
            if len(raw) != 32:
                raise ValueError(
                    "The Digest header's sha-256 must be the base64 of 32 bytes, e.g. "
                    "'Digest: sha-256=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='."
                )
            return raw.hex()
    return None


def _matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    tags = [t.strip().removeprefix("W/") for t in header.split(",")]
    return "*" in tags or etag in tags


_WHOLE = (0, -1)


def _range(header: str, size: int) -> tuple[int, int] | None:
    """``[start, end)`` of a single ``bytes=a-b`` range; None if it cannot be satisfied;
    ``_WHOLE`` for several ranges or another unit (answered with the whole file, as the RFC
    allows)."""
    m = _RANGE.match(header.strip())
    if m is None:
        return _WHOLE
    first, last = m.group(1), m.group(2)
    if not first:
        if not last:
            return _WHOLE
        n = min(int(last), size)
        return (size - n, size) if n > 0 else None
    start = int(first)
    if start >= size:
        return None
    end = size if not last else min(int(last) + 1, size)
    return (start, end) if end > start else None

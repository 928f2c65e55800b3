"""File storage: the ``_storage`` system table over a blob store, and ``ctx.storage``.

A stored file is a ``_storage`` document ``{"sha256": <base64>, "size": n, "contentType": ...}``
(Convex's fields) whose bytes are the blob with that sha256 (``runtime/store/blob_store.py``).
Convex's upload flow::

    url = await ctx.storage.generate_upload_url()   # in a mutation or action
    # the client POSTs the raw bytes to url -> {"storageId": "kg2..."}
    await ctx.storage.get_url(storage_id)            # -> http://127.0.0.1:3210/api/storage/kg2...

Upload URLs are signed, expire after an hour and work once, across restarts too: a durable
deployment keeps the signing key and the URLs used in the hour beside its blobs. A blob is
removed once no durable
``_storage`` document points to it (several documents may share one); uploads in progress keep
theirs. At start, blobs nothing points to (a crash mid-upload) are swept.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import os
import struct
import time
from collections import Counter
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import IO, Any, Protocol

from pyconvex.errors import ConvexError, PyconvexError
from pyconvex.runtime.functions.results import FunctionResult
from pyconvex.runtime.query.transaction import Transaction, table_number_of
from pyconvex.runtime.store.blob_store import CHUNK_SIZE, BlobStore
from pyconvex.runtime.store.index import Document
from pyconvex.runtime.store.memory import BY_CREATION_TIME, Store
from pyconvex.runtime.store.read_set import Commit, CommitListener
from pyconvex.server.functions import FunctionDefinition, internal_mutation
from pyconvex.values.validators import v

log = logging.getLogger("pyconvex.storage")

STORAGE_TABLE = "_storage"
STORE_PATH = "_system/storage:store"
DELETE_PATH = "_system/storage:delete"
UPLOAD_URL_TTL_S = 3600.0
#: In a durable deployment's storage directory: the upload URLs' signing key, and the URLs
#: used, one ``<nonce hex> <expiry ms>`` line each (the expired ones dropped at start).
KEY_FILE = "upload_url_key"
USED_FILE = "used_upload_urls"
#: Until the server says where it listens: Convex's local ports.
DEFAULT_ORIGIN = "http://127.0.0.1:3210"
DEFAULT_SITE_ORIGIN = "http://127.0.0.1:3211"


class StorageHost(Protocol):
    """What file storage needs of the deployment."""

    store: Store

    def add_commit_listener(self, listener: CommitListener) -> Callable[[], None]: ...

    async def run_mutation(
        self, path: str, args: dict[str, Any] | None = None, *, identity: Any = None,
        allow_internal: bool = False,
    ) -> FunctionResult: ...  # fmt: skip


class UploadTokenError(PyconvexError):
    """An upload URL's token is malformed, expired or already used (``code`` says which)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class FileStorage:
    """The deployment's file storage (see the module docstring)."""

    def __init__(self, host: StorageHost) -> None:
        self.host = host
        self.blobs: BlobStore | None = None
        #: Where clients reach the API port: upload and file URLs start with it.
        self.origin = DEFAULT_ORIGIN
        self.upload_url_ttl_s = UPLOAD_URL_TTL_S
        self._secret = os.urandom(32)
        self._used: dict[bytes, float] = {}  # nonce -> expiry (ms)
        self._used_path: Path | None = None  # where a durable deployment records them
        self._sha_of: dict[str, str] = {}  # _storage id -> sha256 (hex)
        self._refs: Counter[str] = Counter()
        self._pins: Counter[str] = Counter()
        self._remove_listener: Callable[[], None] | None = None
        self._deleting: set[asyncio.Task[None]] = set()

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self, blobs: BlobStore, state_dir: Path | None = None) -> None:
        """Use ``blobs``; drop the blobs no ``_storage`` document points to. With
        ``state_dir``, upload URLs outlive the process (see the module docstring)."""
        self.blobs = blobs
        if state_dir is not None:
            self._secret, self._used = _load_upload_state(state_dir)
            self._used_path = state_dir / USED_FILE
        table = self.host.store.tables[STORAGE_TABLE]
        for _, doc in table.scan(BY_CREATION_TIME, None, None, False, None):
            self._add(doc)
        for sha256 in list(blobs.stored()):
            if sha256 not in self._refs:
                await blobs.delete(sha256)
        self._remove_listener = self.host.add_commit_listener(self._on_commit)

    async def close(self) -> None:
        if self._remove_listener is not None:
            self._remove_listener()
        for task in list(self._deleting):
            await asyncio.gather(task, return_exceptions=True)
        if self.blobs is not None:
            await self.blobs.close()

    def _blobs(self) -> BlobStore:
        if self.blobs is None:
            raise PyconvexError("File storage is not open in this deployment.")
        return self.blobs

    # -- reference counting ----------------------------------------------------------------
    def _add(self, doc: Document) -> None:
        sha = hex_sha256(str(doc["sha256"]))
        self._sha_of[doc["_id"]] = sha
        self._refs[sha] += 1

    def _on_commit(self, latest_ts: int, commits: list[Commit]) -> None:
        table = None
        for commit in commits:
            if STORAGE_TABLE not in commit.writes.tables():
                continue
            for entry in commit.writes.entries:
                if entry.table != STORAGE_TABLE:
                    continue
                if table is None:
                    table = self.host.store.tables[STORAGE_TABLE]
                doc = table.get(entry.doc_id, latest_ts)
                if doc is not None and entry.doc_id not in self._sha_of:
                    self._add(doc)
                elif doc is None and entry.doc_id in self._sha_of:
                    sha = self._sha_of.pop(entry.doc_id)
                    self._refs[sha] -= 1
                    self._release(sha)

    def _release(self, sha: str) -> None:
        if self._refs[sha] <= 0 and self._pins[sha] <= 0:
            self._refs.pop(sha, None)
            self._pins.pop(sha, None)
            task = asyncio.get_running_loop().create_task(self._blobs().delete(sha))
            self._deleting.add(task)
            task.add_done_callback(self._deleting.discard)

    # -- upload URLs -----------------------------------------------------------------------
    def generate_upload_url(self) -> str:
        """A signed URL on the API port that accepts one upload within the next hour."""
        expiry = int(time.time() * 1000 + self.upload_url_ttl_s * 1000)
        body = struct.pack(">Q", expiry) + os.urandom(12)
        mac = hmac.new(self._secret, body, hashlib.sha256).digest()[:16]
        token = _b64url(body) + "." + _b64url(mac)
        return f"{self.origin}/api/storage/upload?token={token}"

    def redeem(self, token: str) -> None:
        """Accept an upload URL's token once (raises :class:`UploadTokenError`)."""
        now = time.time() * 1000
        try:
            body_text, _, mac_text = token.partition(".")
            body, mac = _unb64url(body_text), _unb64url(mac_text)
        except ValueError:
            body, mac = b"", b""
        expected = hmac.new(self._secret, body, hashlib.sha256).digest()[:16]
        if len(body) != 20 or not hmac.compare_digest(mac, expected):
            raise UploadTokenError(
                "InvalidUploadUrl",
                "This upload URL is not valid for this deployment (it may come from before a "
                "restart). Get a new one with ctx.storage.generate_upload_url().",
            )
        (expiry,) = struct.unpack(">Q", body[:8])
        if expiry < now:
            raise UploadTokenError(
                "UploadUrlExpired",
                "This upload URL has expired (they last an hour). Get a new one with "
                "ctx.storage.generate_upload_url() right before uploading.",
            )
        nonce = body[8:]
        if nonce in self._used:
            raise UploadTokenError(
                "UploadUrlUsed",
                "This upload URL was already used; each one accepts a single upload. Get a new "
                "one with ctx.storage.generate_upload_url().",
            )
        self._used = {n: e for n, e in self._used.items() if e >= now}
        self._used[nonce] = float(expiry)
        if self._used_path is not None:
            with self._used_path.open("a", encoding="ascii") as f:
                f.write(f"{nonce.hex()} {expiry}\n")

    # -- storing and reading ---------------------------------------------------------------
    async def store(
        self,
        chunks: AsyncIterable[bytes],
        content_type: str | None = None,
        expected_sha256: str | None = None,
    ) -> str:
        """Store the bytes of ``chunks`` as a new file; returns its ``_storage`` id.

        ``expected_sha256`` (hex) rejects the upload if the bytes do not match it."""
        blobs = self._blobs()
        blob = await blobs.write(chunks)
        self._pins[blob.sha256] += 1
        try:
            if expected_sha256 is not None and expected_sha256 != blob.sha256:
                raise StorageContentError(
                    f"The uploaded bytes have sha256 {blob.sha256}, not the {expected_sha256} "
                    "the request's Digest header announced; the file was not stored."
                )
            result = await self.host.run_mutation(
                STORE_PATH,
                {
                    "sha256": base64.b64encode(bytes.fromhex(blob.sha256)).decode(),
                    "size": float(blob.size),
                    "contentType": content_type,
                },
                allow_internal=True,
            )
            if result.failure is not None:
                raise PyconvexError(f"The file could not be recorded: {result.failure.message}")
            return str(result.value)
        finally:
            self._pins[blob.sha256] -= 1
            self._release(blob.sha256)

    def document(self, storage_id: str) -> Document | None:
        """The ``_storage`` document at the latest durable commit (None if absent)."""
        store = self.host.store
        table = store.tables[STORAGE_TABLE]
        return table.get(storage_id, store.durable_ts) if isinstance(storage_id, str) else None

    def url(self, storage_id: str) -> str:
        return f"{self.origin}/api/storage/{storage_id}"

    def read(self, doc: Document, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """The bytes of the file ``doc`` describes (``[start, end)``), in chunks."""
        return self._blobs().read(hex_sha256(str(doc["sha256"])), start, end)


class StorageContentError(PyconvexError):
    """Uploaded bytes do not match the checksum the client announced."""


def hex_sha256(b64: str) -> str:
    return base64.b64decode(b64).hex()


def metadata(doc: Document) -> dict[str, Any]:
    """``get_metadata``'s answer (Convex's FileMetadata: sha256 in hex)."""
    return {
        "storageId": doc["_id"],
        "sha256": hex_sha256(str(doc["sha256"])),
        "size": doc["size"],
        "contentType": doc.get("contentType"),
    }


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64url(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as e:
        raise ValueError(str(e)) from None


# -- ctx.storage -------------------------------------------------------------------------------


def _storage_document(tx: Transaction, storage_id: Any, op: str) -> Document | None:
    table = tx.table_for_id(storage_id) if isinstance(storage_id, str) else None
    if table is None or table.name != STORAGE_TABLE:
        raise StorageIdError(
            f"{tx.where}: storage.{op}() takes the id of a stored file (an Id of table "
            f"_storage, as an upload or storage.store returned), got {storage_id!r}."
        )
    return tx.get(storage_id)


class StorageIdError(PyconvexError, ValueError):
    """A storage call got something that is not a ``_storage`` id."""


class StorageReader:
    """``ctx.storage`` in a query: ``get_url``, ``get_metadata`` (reads join the read set)."""

    __slots__ = ("_files", "_tx")

    def __init__(self, tx: Transaction, files: FileStorage) -> None:
        self._tx = tx
        self._files = files

    async def get_url(self, storage_id: str) -> str | None:
        """A URL serving the file (None if it was deleted)::

        url = await ctx.storage.get_url(message["image"])
        """
        doc = _storage_document(self._tx, storage_id, "get_url")
        return None if doc is None else self._files.url(storage_id)

    async def get_metadata(self, storage_id: str) -> dict[str, Any] | None:
        """``{"storageId", "sha256" (hex), "size", "contentType"}`` or None (prefer
        ``ctx.db.system.get(storage_id)``)."""
        doc = _storage_document(self._tx, storage_id, "get_metadata")
        return None if doc is None else metadata(doc)


class StorageWriter(StorageReader):
    """``ctx.storage`` in a mutation: the reader plus ``generate_upload_url`` and ``delete``."""

    __slots__ = ()

    async def generate_upload_url(self) -> str:
        """A short-lived URL a client POSTs the file's raw bytes to; the answer is
        ``{"storageId": ...}``."""
        return self._files.generate_upload_url()

    async def delete(self, storage_id: str) -> None:
        """Delete a stored file (with this mutation; its bytes go once nothing uses them)."""
        delete_file(self._tx, storage_id)


def delete_file(tx: Transaction, storage_id: Any) -> None:
    """Delete a ``_storage`` document in ``tx`` (no error if it is already gone)."""
    doc = _storage_document(tx, storage_id, "delete")
    if doc is not None:
        table = tx.table(STORAGE_TABLE)
        assert table is not None
        tx.put(table, storage_id, None)


class ActionStorage:
    """``ctx.storage`` in an action: read, store, fetch and delete files directly."""

    __slots__ = ("_files",)

    def __init__(self, files: FileStorage) -> None:
        self._files = files

    def _doc(self, storage_id: Any, op: str) -> Document | None:
        table = self._files.host.store.tables_by_number.get(_table_number(storage_id))
        if table is None or table.name != STORAGE_TABLE:
            raise StorageIdError(
                f"storage.{op}() takes the id of a stored file (an Id of table _storage), got "
                f"{storage_id!r}."
            )
        return self._files.document(storage_id)

    async def get_url(self, storage_id: str) -> str | None:
        """A URL serving the file (None if it was deleted)."""
        return None if self._doc(storage_id, "get_url") is None else self._files.url(storage_id)

    async def get_metadata(self, storage_id: str) -> dict[str, Any] | None:
        """``{"storageId", "sha256" (hex), "size", "contentType"}`` or None."""
        doc = self._doc(storage_id, "get_metadata")
        return None if doc is None else metadata(doc)

    async def generate_upload_url(self) -> str:
        """A short-lived URL a client POSTs the file's raw bytes to."""
        return self._files.generate_upload_url()

    async def store(self, blob: Any, content_type: str | None = None) -> str:
        """Store ``blob`` — bytes, a binary file object, or an (async) iterable of bytes
        chunks, streamed — as a new file; returns its ``_storage`` id::

            image = await ctx.run_blocking(requests.get, url)
            storage_id = await ctx.storage.store(image.content, content_type="image/png")
        """
        if content_type is not None and not isinstance(content_type, str):
            raise TypeError(f"content_type must be a string, got {type(content_type).__name__}.")
        return await self._files.store(_chunks(blob), content_type)

    async def get(self, storage_id: str) -> bytes | None:
        """The file's bytes (None if it was deleted). For big files prefer :meth:`stream`."""
        doc = self._doc(storage_id, "get")
        if doc is None:
            return None
        return b"".join([chunk async for chunk in self._files.read(doc)])

    async def stream(self, storage_id: str) -> AsyncIterator[bytes] | None:
        """The file's bytes in chunks, never whole in memory (None if it was deleted)."""
        doc = self._doc(storage_id, "stream")
        return None if doc is None else self._files.read(doc)

    async def delete(self, storage_id: str) -> None:
        """Delete a stored file (durable on return)."""
        self._doc(storage_id, "delete")
        result = await self._files.host.run_mutation(
            DELETE_PATH, {"id": storage_id}, allow_internal=True
        )
        if result.failure is not None:
            raise PyconvexError(f"storage.delete({storage_id!r}) failed: {result.failure.message}")


def _table_number(storage_id: Any) -> int:
    return (table_number_of(storage_id) or -1) if isinstance(storage_id, str) else -1


async def _chunks(blob: Any) -> AsyncIterator[bytes]:
    if isinstance(blob, bytes | bytearray | memoryview):
        data = memoryview(blob)
        for i in range(0, len(data), CHUNK_SIZE):
            yield bytes(data[i : i + CHUNK_SIZE])
        return
    if hasattr(blob, "__aiter__"):
        async for chunk in blob:
            yield _as_bytes(chunk)
        return
    if hasattr(blob, "read"):
        file: IO[bytes] = blob
        loop = asyncio.get_running_loop()
        while chunk := await loop.run_in_executor(None, file.read, CHUNK_SIZE):
            yield _as_bytes(chunk)
        return
    if isinstance(blob, Iterable) and not isinstance(blob, str):
        for chunk in blob:
            yield _as_bytes(chunk)
        return
    raise TypeError(
        "storage.store() takes bytes, a binary file object or an iterable of bytes chunks, got "
        f"{type(blob).__name__}."
    )


def _as_bytes(chunk: Any) -> bytes:
    if isinstance(chunk, bytes | bytearray | memoryview):
        return bytes(chunk)
    raise TypeError(f"storage.store(): a chunk must be bytes, got {type(chunk).__name__}.")


# -- built-in internal mutations ---------------------------------------------------------------


async def _store(ctx: Any, sha256: str, size: float, contentType: str | None) -> str:
    tx: Transaction = ctx.db._tx
    table = tx.table(STORAGE_TABLE)
    assert table is not None
    doc_id = tx.new_id(table)
    doc: dict[str, Any] = {
        "_id": doc_id,
        "_creationTime": tx.store.next_creation_time(time.time() * 1000),
        "sha256": sha256,
        "size": size,
    }
    if contentType is not None:
        doc["contentType"] = contentType
    tx.put(table, doc_id, doc)
    return doc_id


async def _delete(ctx: Any, id: str) -> None:
    try:
        delete_file(ctx.db._tx, id)
    except StorageIdError as e:
        raise ConvexError(str(e)) from None


def _system(path: str, handler: Any, args: dict[str, Any]) -> FunctionDefinition:
    definition: FunctionDefinition = internal_mutation(args=args)(handler)
    definition.path = path
    return definition


#: File storage's built-in functions.
FUNCTIONS: dict[str, FunctionDefinition] = {
    STORE_PATH: _system(
        STORE_PATH,
        _store,
        {"sha256": v.string(), "size": v.float64(), "contentType": v.union(v.string(), v.null())},
    ),
    DELETE_PATH: _system(DELETE_PATH, _delete, {"id": v.string()}),
}


def _load_upload_state(directory: Path) -> tuple[bytes, dict[bytes, float]]:
    """The signing key kept in ``directory`` (made on first use) and the used URLs that have
    not expired yet (the record rewritten with those alone)."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    key_path = directory / KEY_FILE
    try:
        key = key_path.read_bytes()
    except FileNotFoundError:
        key = b""
    if len(key) != 32:
        key = os.urandom(32)
        _write_private(key_path, key)
    used: dict[bytes, float] = {}
    used_path = directory / USED_FILE
    now = time.time() * 1000
    try:
        lines = used_path.read_text(encoding="ascii", errors="replace").splitlines()
    except FileNotFoundError:
        lines = []
    for line in lines:
        nonce, _, expiry = line.partition(" ")
        try:
            if float(expiry) >= now:
                used[bytes.fromhex(nonce)] = float(expiry)
        except ValueError:  # a line cut short by a crash: that URL is expired by now or soon
            continue
    _write_private(used_path, "".join(f"{n.hex()} {e:.0f}\n" for n, e in used.items()).encode())
    return key, used


def _write_private(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` (readable by this user alone), atomically."""
    temp = path.with_name(path.name + ".tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temp, path)

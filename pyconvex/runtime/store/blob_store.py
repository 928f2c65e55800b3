"""Where file storage keeps the bytes: content-addressed blobs, streamed both ways.

:class:`BlobStore` is the seam (an S3-compatible store can implement it); :class:`LocalBlobStore`
keeps each blob as a file named by its sha256 under the deployment's data directory::

    .pyconvex/storage/blobs/3a/3a7bd3e2360a3d29eea436fcfb7e44c735d117c42d1c1835420b6b9942dd4f1b
    .pyconvex/storage/tmp/         uploads in progress

A blob is written to ``tmp/`` while its hash is computed, flushed to disk, then renamed into
place, so a blob file is always complete; the same content is stored once. Nothing is ever held
whole in memory: writes take an async iterator of chunks, reads yield chunks. Which blobs are
still referenced is the caller's business (``runtime/functions/file_storage.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from pyconvex.errors import StorageError

CHUNK_SIZE = 256 * 1024


@dataclass(frozen=True, slots=True)
class StoredBlob:
    """A blob as written: its sha256 (hex) and size in bytes."""

    sha256: str
    size: int


class BlobStore(Protocol):
    """Content-addressed blob storage (see the module docstring)."""

    async def write(self, chunks: AsyncIterable[bytes]) -> StoredBlob:
        """Store the bytes ``chunks`` yields; returns their sha256 and size."""
        ...

    def read(self, sha256: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """The bytes ``[start, end)`` of a blob, in chunks (raises KeyError if absent)."""
        ...

    def size(self, sha256: str) -> int | None:
        """A blob's size, or None if it is not stored."""
        ...

    async def delete(self, sha256: str) -> None:
        """Remove a blob (no error if it is absent)."""
        ...

    def stored(self) -> Iterator[str]:
        """The sha256 of every stored blob."""
        ...

    async def close(self) -> None: ...


class LocalBlobStore:
    """Blobs as files under ``root`` (``root`` None: a temporary directory, removed at close)."""

    def __init__(self, root: Path | None) -> None:
        self._temporary = root is None
        self.root = Path(tempfile.mkdtemp(prefix="pyconvex-storage-")) if root is None else root
        self._blobs = self.root / "blobs"
        self._tmp = self.root / "tmp"
        # Private to this user, as the data directory it sits in.
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._blobs.mkdir(parents=True, exist_ok=True)
        # Uploads the server did not finish (it stopped meanwhile) are garbage.
        shutil.rmtree(self._tmp, ignore_errors=True)
        self._tmp.mkdir(parents=True, exist_ok=True)
        # File I/O and hashing run here, never on the event loop.
        self._io = ThreadPoolExecutor(8, thread_name_prefix="pyconvex-blobs")

    def path(self, sha256: str) -> Path:
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise KeyError(sha256)
        return self._blobs / sha256[:2] / sha256

    async def write(self, chunks: AsyncIterable[bytes]) -> StoredBlob:
        loop = asyncio.get_running_loop()
        temp = self._tmp / uuid.uuid4().hex
        file = await loop.run_in_executor(self._io, _open_new, temp)
        hasher = hashlib.sha256()
        size = 0
        try:
            pending: asyncio.Future[None] | None = None
            async for chunk in chunks:
                if not chunk:
                    continue
                size += len(chunk)
                # Absorb the previous chunk while this one is received.
                if pending is not None:
                    await pending
                pending = loop.run_in_executor(self._io, _absorb, file, hasher, bytes(chunk))
            if pending is not None:
                await pending
            sha256 = hasher.hexdigest()
            target = self.path(sha256)
            await loop.run_in_executor(self._io, _commit, file, temp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                file.close()
            with contextlib.suppress(OSError):
                temp.unlink()
            raise
        return StoredBlob(sha256, size)

    async def read(
        self, sha256: str, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        try:
            file = await loop.run_in_executor(self._io, open, self.path(sha256), "rb")
        except FileNotFoundError:
            raise KeyError(sha256) from None
        try:
            if start:
                file.seek(start)
            left = None if end is None else max(0, end - start)
            while left is None or left > 0:
                n = CHUNK_SIZE if left is None else min(CHUNK_SIZE, left)
                chunk = await loop.run_in_executor(self._io, file.read, n)
                if not chunk:
                    break
                if left is not None:
                    left -= len(chunk)
                yield chunk
        finally:
            file.close()

    def size(self, sha256: str) -> int | None:
        try:
            return self.path(sha256).stat().st_size
        except (KeyError, FileNotFoundError):
            return None

    async def delete(self, sha256: str) -> None:
        loop = asyncio.get_running_loop()
        with contextlib.suppress(KeyError, FileNotFoundError):
            await loop.run_in_executor(self._io, self.path(sha256).unlink)

    def stored(self) -> Iterator[str]:
        for bucket in self._blobs.iterdir():
            if bucket.is_dir():
                yield from (p.name for p in bucket.iterdir() if len(p.name) == 64)

    async def close(self) -> None:
        self._io.shutdown(wait=True)
        if self._temporary:
            shutil.rmtree(self.root, ignore_errors=True)


def _open_new(path: Path) -> BinaryIO:
    return open(path, "xb")


def _absorb(file: BinaryIO, hasher: hashlib._Hash, chunk: bytes) -> None:
    hasher.update(chunk)
    file.write(chunk)


def _commit(file: BinaryIO, temp: Path, target: Path) -> None:
    """Make the written temp file the blob ``target``, durably (or drop it: same content)."""
    try:
        file.flush()
        os.fsync(file.fileno())
    finally:
        file.close()
    if target.exists():
        temp.unlink()
        return
    target.parent.mkdir(exist_ok=True)
    try:
        os.replace(temp, target)
    except OSError as e:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise StorageError(f"Could not store a file blob at {target}: {e}") from e
    _fsync_dir(target.parent)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

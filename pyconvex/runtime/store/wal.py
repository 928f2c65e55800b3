"""The write-ahead log: an append-only, checksummed file where a commit becomes durable.

A batch is durable once its record is appended here and ``fdatasync``-ed; the DuckDB file
follows behind (``logged_persistence.py``). The log is a directory of segment files,
``<first max_ts, 20 digits>.wal``, each::

    header   b"PYCXWAL\\n" + format version (u32 little-endian)
    records  length (u32) | crc32 of the length (u32) | payload | crc32 of the payload (u32)

The payload is a pickled :class:`~.persistence.Batch` as plain tuples (the files are private
to the user, 0600 in a 0700 directory). Reading tells three cases apart:

* a **torn tail** — the last record of the newest segment stops short, or its payload does not
  match its checksum, and nothing follows it: a crash mid-append. It was never acknowledged;
  it is dropped (the file is truncated to the last whole record);
* a **damaged record** anywhere else (a flipped byte): :class:`WalDamaged`, naming the file and
  the offset, and nothing is changed — starting without those records would silently lose
  acknowledged writes;
* an **unknown format version** (a newer pyconvex wrote it): :class:`WalDamaged` too, nothing
  overwritten.

Appends and ``fdatasync`` run on one thread of their own: both release the GIL, so the event
loop goes on while the disk works, and appends that arrive meanwhile share the next sync. A
small record after a quiet spell is written on the loop itself, and synced on the loop's next
turn, with the disk's write started meanwhile (``logged_persistence.py``).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import struct
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pyconvex.errors import StorageError
from pyconvex.runtime.store.persistence import Batch, DocumentWrite

#: The kernel's ``posix_fadvise`` where there is one (not on macOS or Windows).
_fadvise = getattr(os, "posix_fadvise", None)

MAGIC = b"PYCXWAL\n"
FORMAT_VERSION = 1
_HEADER = struct.Struct("<8sI")
_RECORD_HEAD = struct.Struct("<II")
_CRC = struct.Struct("<I")
#: How long opening a segment or closing the log waits for a write's sync (see WalWriter).
HOLD_WAIT_S = 30.0
#: A new segment is started once the current one is this large (and at every checkpoint that
#: finds everything applied), so applied segments can be deleted whole.
SEGMENT_BYTES = 8 * 1024 * 1024
SUFFIX = ".wal"


class WalDamaged(StorageError):
    """The log cannot be read safely; the message names the file, the offset and what to do."""


def encode_batch(batch: Batch) -> bytes:
    """One record (header, payload, checksum) for ``batch``."""
    docs = [(d.ts, d.table_number, d.doc_id, d.doc) for d in batch.documents]
    fields = (docs, batch.new_tables, batch.session_requests, batch.max_ts, batch.after_ts)
    payload = pickle.dumps((*fields, batch.staged), protocol=pickle.HIGHEST_PROTOCOL)
    length = _CRC.pack(len(payload))
    return b"".join(
        (length, _CRC.pack(zlib.crc32(length)), payload, _CRC.pack(zlib.crc32(payload)))
    )


def decode_batch(payload: bytes) -> Batch:
    docs, new_tables, requests, max_ts, after_ts, staged = pickle.loads(payload)
    return Batch([DocumentWrite(*d) for d in docs], new_tables, requests, max_ts, after_ts, staged)


@dataclass(slots=True)
class Segment:
    path: Path
    #: ``max_ts`` of its last whole record (0: none yet).
    last_ts: int = 0


def segment_paths(directory: Path) -> list[Path]:
    """The segments, oldest first (their names sort by the first record's ``max_ts``)."""
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.suffix == SUFFIX and p.is_file())


def read_segment(path: Path, newest: bool) -> Iterator[tuple[int, Batch]]:
    """Yield ``(end offset, batch)`` for each whole record of ``path``. A torn tail of the
    newest segment is left unread (the caller truncates to the last end offset); anything
    else that does not check out raises :class:`WalDamaged`."""
    data = path.read_bytes()
    if len(data) < _HEADER.size:
        if newest and MAGIC.startswith(data[: len(MAGIC)]):
            return  # a crash while the header was written: an empty segment
        raise _damaged(path, 0, "it is shorter than its header")
    magic, version = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise _damaged(path, 0, "it does not start with pyconvex's log header")
    if version != FORMAT_VERSION:
        raise WalDamaged(
            f"The write-ahead log {path} has format version {version}; this pyconvex reads "
            f"version {FORMAT_VERSION}. It was written by another pyconvex release: run that "
            "release (or a newer one) on this data directory. Nothing was changed."
        )
    offset = _HEADER.size
    size = len(data)
    while offset < size:
        tail = size - offset
        if tail < _RECORD_HEAD.size:
            if newest:
                return  # torn in its header
            raise _damaged(path, offset, "a record stops short")
        length, length_crc = _RECORD_HEAD.unpack_from(data, offset)
        if zlib.crc32(data[offset : offset + 4]) != length_crc:
            if newest and not data[offset:].strip(b"\0"):
                return  # zeros where the last append was: torn
            raise _damaged(path, offset, "a record's length does not match its checksum")
        end = offset + _RECORD_HEAD.size + length + _CRC.size
        if end > size:
            if newest:
                return  # torn: the crash came mid-append
            raise _damaged(path, offset, "a record stops short")
        payload = data[offset + _RECORD_HEAD.size : end - _CRC.size]
        (crc,) = _CRC.unpack_from(data, end - _CRC.size)
        if zlib.crc32(payload) != crc:
            if newest and end == size:
                return  # the last append was torn
            raise _damaged(path, offset, "a record does not match its checksum")
        try:
            batch = decode_batch(payload)
        except Exception as e:
            raise _damaged(path, offset, f"a record cannot be decoded ({e})") from e
        yield end, batch
        offset = end


def _damaged(path: Path, offset: int, what: str) -> WalDamaged:
    return WalDamaged(
        f"The write-ahead log {path} is damaged at byte {offset}: {what}. pyconvex will not "
        "start on it, since the writes recorded after that point would be lost without a "
        "word. Restore the data directory from a backup; or, to start from what the database "
        "file holds and lose the writes after it, move the log directory "
        f"({path.parent}) aside. Nothing was changed."
    )


class WalWriter:
    """Appends records to the newest segment (on the log's own thread, or on the event loop
    after a quiet spell: see the module). A write and the sync that makes it durable may be
    apart (:meth:`write`, :meth:`sync`): the writer is held between them, so nothing else
    (another write, a new segment, closing) comes between."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._fd = -1
        self.path: Path | None = None
        self.size = 0
        #: Segments finished (no more appends), oldest first, with their last ``max_ts``.
        self.closed_segments: list[Segment] = []
        self.last_ts = 0
        self._named_ts = 0
        #: Held from a write until its sync (and while a segment is opened or closed).
        self._lock = threading.Lock()

    def open_new(self, first_ts: int) -> None:
        """Start a new segment for records from ``first_ts`` on (the old one is kept until
        it is applied)."""
        with self._held():
            self._open_new(first_ts)

    @contextlib.contextmanager
    def _held(self) -> Iterator[None]:
        """Hold the writer, waiting for a write's sync at most ``HOLD_WAIT_S`` (the loop that
        was to sync it may be gone: then nobody waits for that record, and it never counted)."""
        if not self._lock.acquire(timeout=HOLD_WAIT_S):
            raise StorageError(
                f"The write-ahead log {self.path} was left between a write and its sync."
            )
        try:
            yield
        finally:
            self._lock.release()

    def _open_new(self, first_ts: int) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            assert self.path is not None
            self.closed_segments.append(Segment(self.path, self.last_ts))
        # Names sort in log order: each is past the one before (and any left on disk).
        on_disk = [int(p.stem) for p in segment_paths(self.directory) if p.stem.isdigit()]
        self._named_ts = max(first_ts, self._named_ts + 1, max(on_disk, default=0) + 1)
        path = self.directory / f"{self._named_ts:020d}{SUFFIX}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        os.write(fd, _HEADER.pack(MAGIC, FORMAT_VERSION))
        os.fsync(fd)
        _fsync_dir(self.directory)
        self._fd, self.path, self.size = fd, path, _HEADER.size

    def append(self, records: list[bytes], first_ts: int, max_ts: int) -> None:
        """Write ``records`` (``first_ts``: the first one's ``max_ts``) and make them durable.
        On failure the segment is cut back to the last durable record and the error raised
        (the records are not durable)."""
        self.sync(self.write(records, first_ts), max_ts)

    def write(self, records: list[bytes], first_ts: int, *, start_writeback: bool = False) -> int:
        """Write ``records`` after the last durable one, not durable yet; returns how many
        bytes. :meth:`sync` must follow (the writer is held until then). ``start_writeback``
        asks the kernel to start writing them to the disk now, so that work done before the
        sync overlaps the disk's. On failure nothing stays written and the error is raised."""
        self._lock.acquire()
        try:
            if self._fd < 0 or self.size >= SEGMENT_BYTES:
                self._open_new(first_ts)
            data = b"".join(records) if len(records) > 1 else records[0]
            try:
                written = os.write(self._fd, data)
                while written < len(data):
                    written += os.write(self._fd, data[written:])
            except OSError as e:
                self._cut_back()
                raise self._failed(e) from e
            if start_writeback and _fadvise is not None:
                # Linux starts writing the range back here (and drops nothing still dirty);
                # the sync still makes it durable. Only a hint: its failure changes nothing.
                with contextlib.suppress(OSError):
                    _fadvise(self._fd, self.size, written, os.POSIX_FADV_DONTNEED)
        except BaseException:
            self._lock.release()
            raise
        return written

    def sync(self, written: int, max_ts: int) -> None:
        """Make the last :meth:`write` (``written`` bytes, the newest ``max_ts``) durable, and
        let go of the writer. On failure it is cut from the segment and the error raised."""
        try:
            os.fdatasync(self._fd)
        except OSError as e:
            self._cut_back()
            raise self._failed(e) from e
        else:
            self.size += written
            self.last_ts = max_ts
        finally:
            self._lock.release()

    def _cut_back(self) -> None:
        """Cut the segment back to its last durable record."""
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self.size)

    def _failed(self, error: OSError) -> StorageError:
        return StorageError(f"Appending to the write-ahead log {self.path} failed: {error}")

    def remove_applied(self, applied_ts: int) -> int:
        """Delete finished segments whose records DuckDB holds; returns how many went."""
        removed = 0
        with self._held():
            while self.closed_segments and self.closed_segments[0].last_ts <= applied_ts:
                segment = self.closed_segments.pop(0)
                segment.path.unlink(missing_ok=True)
                removed += 1
        return removed

    def close(self) -> None:
        held = self._lock.acquire(timeout=HOLD_WAIT_S)  # (closed anyway: see _held)
        try:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
        finally:
            if held:
                self._lock.release()


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

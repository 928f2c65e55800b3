"""WebSocket frames the sync endpoint writes itself (RFC 6455 §5.2), and the frame a commit's
fan-out shares between sockets, deflated once (RFC 7692, permessage-deflate).

A sync socket frames its text messages here rather than through ``websockets``' protocol
object, which serialises each frame through a ``Frame`` object: a fan-out sends one frame per
subscriber. Clients that offer permessage-deflate (browsers, Node's ``ws``, Python's
``websockets``) get it with ``server_no_context_takeover``: each server message is compressed
on its own, so a frame shared by a thousand sockets is compressed once and the same bytes go
to all of them. Only shared frames are compressed (a socket's own messages are small, and
compressing them would cost more CPU than the bytes saved); incoming compressed messages are
inflated by ``websockets`` (:func:`deflate_extension`).
"""

from __future__ import annotations

import struct
import zlib
from typing import cast

from websockets.extensions.base import Extension, ServerExtensionFactory
from websockets.extensions.permessage_deflate import (
    PerMessageDeflate,
    ServerPerMessageDeflateFactory,
)

try:
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - websockets without its C extension
    from websockets.utils import apply_mask

MAX_CLOSE_REASON_BYTES = 123
#: A shared frame's payload below this is sent as it is.
DEFLATE_MIN_BYTES = 1024
#: The window a client's compressor may use, when it lets the server choose (its inflater
#: is ours to hold per socket: 2**12 bytes of window instead of 32 KiB).
CLIENT_WINDOW_BITS = 12
#: zlib's fastest level: on query results it compresses within a few percent of level 6 at
#: half the time.
DEFLATE_LEVEL = 1
_TAIL = b"\x00\x00\xff\xff"  # what a sync flush ends with; RFC 7692 §7.2.1 drops it


def text_frame_header(length: int, *, deflated: bool = False) -> bytes:
    """The header of a final, unmasked text frame with a ``length``-byte payload (a server
    never masks); ``deflated`` sets RSV1, which marks a permessage-deflate message."""
    first = 0xC1 if deflated else 0x81
    if length < 126:
        return bytes((first, length))
    if length < 65536:
        return struct.pack("!BBH", first, 126, length)
    return struct.pack("!BBQ", first, 127, length)


def truncate_reason(reason: str) -> str:
    """A close reason cut to what fits in a close frame (123 bytes of UTF-8)."""
    raw = reason.encode("utf-8")
    if len(raw) <= MAX_CLOSE_REASON_BYTES:
        return reason
    return raw[: MAX_CLOSE_REASON_BYTES - 3].decode("utf-8", "ignore") + "..."


def deflate_extension() -> ServerExtensionFactory:
    """permessage-deflate as the sync endpoint accepts it: the server never keeps context
    between messages (so one compressed frame fits every socket), the client keeps what it
    offers, within :data:`CLIENT_WINDOW_BITS` when it lets the server choose."""
    return ServerPerMessageDeflateFactory(
        server_no_context_takeover=True, client_max_window_bits=CLIENT_WINDOW_BITS
    )


def deflate_window_bits(extensions: list[Extension]) -> int:
    """The window bits to compress this socket's messages with, or 0 when it negotiated no
    compression."""
    for extension in extensions:
        if isinstance(extension, PerMessageDeflate):
            return int(extension.local_max_window_bits)
    return 0


def deflate(payload: bytes, window_bits: int) -> bytes:
    """``payload`` compressed as one permessage-deflate message with no context taken over."""
    compressor = zlib.compressobj(DEFLATE_LEVEL, zlib.DEFLATED, -window_bits)
    data = compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH)
    return data[: -len(_TAIL)] if data.endswith(_TAIL) else data


class SharedFrame:
    """The text frame last framed for a list of parts: a fan-out hands the same list to every
    socket (the list is not changed once framed; :attr:`parts` keeps it alive, so its
    identity is not reused), which then costs no framing, and is compressed once per window
    size for the sockets that take compression."""

    __slots__ = ("framed", "parts", "ready", "wire_bytes")

    def __init__(self) -> None:
        self.parts: list[bytes] | None = None
        #: The frame's header followed by the parts, and its total size.
        self.framed: list[bytes] = []
        self.wire_bytes = 0
        #: The frame as one piece, ready to write, and its size, by permessage-deflate window
        #: (0: not compressed); made by :meth:`deflated` and :meth:`joined`, looked up first.
        self.ready: dict[int, tuple[list[bytes], int]] = {}

    def frame(self, parts: list[bytes]) -> None:
        """Make ``parts`` the shared frame."""
        size = sum(map(len, parts))
        header = text_frame_header(size)
        self.parts = parts
        self.framed = [header, *parts]
        self.wire_bytes = len(header) + size
        self.ready = {}

    def joined(self) -> list[bytes]:
        """The frame as one piece (made once, for the sockets after the first: one buffer is
        the cheapest write, and the first socket's write did not pay for the copy)."""
        made = self.ready.get(0)
        if made is None:
            made = self.ready[0] = ([b"".join(self.framed)], self.wire_bytes)
        return made[0]

    def deflated(self, window_bits: int) -> tuple[list[bytes], int]:
        """The frame compressed with ``window_bits`` (made once), and its size."""
        made = self.ready.get(window_bits)
        if made is None:
            payload = deflate(b"".join(self.parts or ()), window_bits)
            frame = text_frame_header(len(payload), deflated=True) + payload
            made = self.ready[window_bits] = ([frame], len(frame))
        return made


class FrameSplitter:
    """Cuts a client's bytes into whole frames, and unmasks the plain ones itself.

    A final, unfragmented, masked text or binary frame with no extension bit (what a client
    sends for every sync message) comes out as ``(opcode, payload)``: parsing it through
    ``websockets``' generator-based reader cost ~90 µs after idle, most of a mutation's
    receipt. Any other frame (control frames, fragments, compressed messages, anything
    malformed) comes out whole, as ``(0, frame bytes)``, for ``websockets`` to handle; since it
    only ever gets whole frames, its reader is always between frames.
    """

    __slots__ = ("_buffer", "_max_size", "_passthrough")

    def __init__(self, max_size: int) -> None:
        self._buffer = bytearray()
        self._max_size = max_size
        self._passthrough = False  # a frame over max_size: websockets gets everything now

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def next(self, plain: bool = True) -> tuple[int, bytes] | None:
        """The next whole frame, or None until there is one (``plain=False``: hand even a
        plain frame over whole, e.g. while a fragmented message is being received)."""
        buf = self._buffer
        n = len(buf)
        if self._passthrough:
            if not n:
                return None
            rest = bytes(buf)
            buf.clear()
            return 0, rest
        if n < 2:
            return None
        b0, b1 = buf[0], buf[1]
        length, head = b1 & 0x7F, 2
        if length == 126:
            if n < 4:
                return None
            length, head = int.from_bytes(buf[2:4], "big"), 4
        elif length == 127:
            if n < 10:
                return None
            length, head = int.from_bytes(buf[2:10], "big"), 10
        if length > self._max_size:  # websockets refuses it from its header
            self._passthrough = True
            return self.next()
        masked = b1 & 0x80
        end = head + (4 if masked else 0) + length
        if n < end:
            return None
        opcode = b0 & 0x0F
        if plain and masked and b0 & 0xF0 == 0x80 and (opcode == 1 or opcode == 2):
            # bytearray slices: websockets 13 types apply_mask for bytes only, any buffer works
            data, mask = cast(bytes, buf[end - length : end]), cast(bytes, buf[head : head + 4])
            payload = apply_mask(data, mask)
            del buf[:end]
            return opcode, payload
        frame = bytes(buf[:end])
        del buf[:end]
        return 0, frame

    def rest(self) -> bytes:
        """What is left unsplit (handed to websockets when it takes over)."""
        rest = bytes(self._buffer)
        self._buffer.clear()
        return rest

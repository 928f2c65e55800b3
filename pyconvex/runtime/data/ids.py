"""Many fresh document ids at once, for an import (the ids ``encode_id`` makes).

An id is base32 (Convex's alphabet, RFC 4648 bit order, no padding) of the table number as a
VInt, 16 random bytes and a Fletcher-16 footer. Minting them one by one costs ~5 us each in
pure Python; here the randomness comes in one draw and the base32 is an unrolled lookup of
15 bits at a time.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from itertools import accumulate

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
_TRIPLES = [a + b + c for a in _ALPHABET for b in _ALPHABET for c in _ALPHABET]


def _vint(n: int) -> bytes:
    out = bytearray()
    while True:
        group = n & 0x7F
        n >>= 7
        if not n:
            out.append(group)
            return bytes(out)
        out.append(group | 0x80)


def _encoder(nchars: int, pad: int) -> Callable[[int], str]:
    """base32 of an integer of ``nchars * 5 - pad`` bits, unrolled for that length."""
    rest = nchars % 3
    parts = [f"t[(n >> {s}) & 32767]" for s in range(nchars * 5 - 15, rest * 5 - 1, -15)]
    if rest:
        parts.append(f"t[n & {(1 << (rest * 5)) - 1}][{3 - rest}:]")
    source = f"lambda n: {' + '.join(parts)}"
    encode: Callable[[int], str] = eval(source, {"t": _TRIPLES})  # (text made here)
    return encode


def mint_ids(table_number: int, count: int) -> list[str]:
    """``count`` fresh random ids of table ``table_number`` (< 2**32)."""
    prefix = _vint(table_number)
    nbits = (len(prefix) + 18) * 8
    nchars = -(-nbits // 5)
    pad = nchars * 5 - nbits
    encode = _encoder(nchars, pad)
    randomness = os.urandom(16 * count)
    from_bytes = int.from_bytes
    out = []
    for i in range(0, 16 * count, 16):
        body = prefix + randomness[i : i + 16]
        footer = bytes((sum(body) & 0xFF, sum(accumulate(body)) & 0xFF))
        out.append(encode(from_bytes(body + footer, "big") << pad))
    return out

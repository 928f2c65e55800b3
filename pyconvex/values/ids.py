"""Document IDs in Convex's real format (PROTOCOL.md §4).

``bytes = VInt(table_number) ‖ 16 random bytes ‖ footer``, where the footer is the Fletcher-16
checksum of the bytes before it (little-endian, XOR version 0), written in lower-case Crockford
base32 with RFC 4648 bit order and no padding: 31 characters for table numbers below 128.
"""

from __future__ import annotations

import os
import random

from pyconvex.errors import InvalidValueError

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
_RFC_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_TO_CROCKFORD = bytes.maketrans(_RFC_ALPHABET.encode(), _ALPHABET.encode())
_TO_DIGITS = {
    **{code: "!" for code in range(128)},
    **{ord(char): "0123456789abcdefghijklmnopqrstuv"[i] for i, char in enumerate(_ALPHABET)},
}
_ALPHABET_SET = frozenset(_ALPHABET)
_RANDOM_LEN = 16
_VERSION = 0
_MAX_TABLE_NUMBER = (1 << 32) - 1
_MIN_LEN = -(-(1 + _RANDOM_LEN + 2) * 8 // 5)  # 31 characters (1-byte VInt)
_MAX_LEN = -(-(5 + _RANDOM_LEN + 2) * 8 // 5)  # 37 characters (5-byte VInt)


def vint(n: int) -> bytes:
    """``n`` as a VInt: 7 bits a byte, low bits first, the high bit set on all but the last."""
    out = bytearray()
    while True:
        group = n & 0x7F
        n >>= 7
        if n:
            out.append(group | 0x80)
        else:
            out.append(group)
            return bytes(out)


def _fletcher16(data: bytes) -> int:
    a = b = 0
    for byte in data:
        a = (a + byte) & 0xFF
        b = (b + a) & 0xFF
    return (b << 8) | a


_TRIPLES = [a + b + c for a in _ALPHABET for b in _ALPHABET for c in _ALPHABET]  # 15 bits


def _base32(data: bytes) -> str:
    # RFC 4648 bit order without padding, 15 bits (3 characters) at a time: ids are minted on
    # every insert, and the stdlib's b32encode is pure Python.
    nbits = len(data) * 8
    nchars = -(-nbits // 5)
    n = int.from_bytes(data, "big") << (nchars * 5 - nbits)
    triples = _TRIPLES
    rest = nchars % 3
    out = [triples[(n >> shift) & 0x7FFF] for shift in range(nchars * 5 - 15, rest * 5 - 1, -15)]
    if rest:
        out.append(triples[n & ((1 << (rest * 5)) - 1)][3 - rest :])
    return "".join(out)


def encode_id(table_number: int, random_bytes: bytes) -> str:
    """The ID string for a table number and 16 random bytes.

    >>> encode_id(1, bytes(16))
    '0400000000000000000000000000248'
    """
    if type(table_number) is not int or not 1 <= table_number <= _MAX_TABLE_NUMBER:
        raise InvalidValueError(
            f"Table number must be an int in 1..{_MAX_TABLE_NUMBER}, got {table_number!r}"
        )
    if len(random_bytes) != _RANDOM_LEN:
        raise InvalidValueError(f"An ID needs {_RANDOM_LEN} random bytes, got {len(random_bytes)}")
    body = vint(table_number) + bytes(random_bytes)
    footer = (_fletcher16(body) ^ _VERSION).to_bytes(2, "little")
    return _base32(body + footer)


def decode_id(id_str: str) -> tuple[int, bytes]:
    """The table number and 16 random bytes of an ID; strict about every character.

    >>> decode_id("kg27rxfv99gzp01wmph0gvt92d6hnvy6")[0]
    540
    """
    if type(id_str) is not str:
        raise InvalidValueError(f"An ID must be a string, got {type(id_str).__name__}")
    n = len(id_str)
    if not _MIN_LEN <= n <= _MAX_LEN:
        raise InvalidValueError(
            f"{id_str!r} is not a valid ID: it has {n} characters, IDs have "
            f"{_MIN_LEN} to {_MAX_LEN}"
        )
    # Crockford's alphabet in order is int()'s base-32 digit order once translated, which is
    # much faster than base64.b32decode; anything outside the alphabet becomes "!" and fails.
    try:
        if not id_str.isascii():
            raise ValueError
        number = int(id_str.translate(_TO_DIGITS), 32)
    except ValueError:
        bad = sorted(set(id_str) - _ALPHABET_SET)
        raise InvalidValueError(
            f"{id_str!r} is not a valid ID: {''.join(bad)!r} is not in the ID alphabet "
            f"{_ALPHABET!r}"
        ) from None
    size, extra = divmod(n * 5, 8)
    if extra >= 5:
        raise InvalidValueError(
            f"{id_str!r} is not a valid ID: {n} characters is not a whole number of bytes"
        )
    if number & ((1 << extra) - 1):
        raise InvalidValueError(f"{id_str!r} is not a valid ID: it is not in canonical form")
    data = (number >> extra).to_bytes(size, "big")
    table_number = 0
    shift = 0
    for i, byte in enumerate(data[:5]):
        table_number |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            vint_len = i + 1
            break
    else:
        raise InvalidValueError(f"{id_str!r} is not a valid ID: its table number is malformed")
    if size != vint_len + _RANDOM_LEN + 2:
        raise InvalidValueError(
            f"{id_str!r} is not a valid ID: it has {size} bytes, "
            f"expected {vint_len + _RANDOM_LEN + 2} for its table number"
        )
    body = data[:-2]
    if (_fletcher16(body) ^ _VERSION).to_bytes(2, "little") != data[-2:]:
        raise InvalidValueError(f"{id_str!r} is not a valid ID: its checksum does not match")
    # An over-long VInt (a trailing 0x80 group) would be a second spelling of the same table.
    if table_number < 1 or (vint_len > 1 and data[vint_len - 1] == 0):
        raise InvalidValueError(f"{id_str!r} is not a valid ID: it is not in canonical form")
    return table_number, body[vint_len:]


def new_id(table_number: int, rng: random.Random | None = None) -> str:
    """A fresh random ID in a table (``rng`` makes it reproducible, e.g. in tests).

    >>> len(new_id(3)), new_id(3, random.Random(1)) == new_id(3, random.Random(1))
    (31, True)
    """
    raw = os.urandom(_RANDOM_LEN) if rng is None else rng.randbytes(_RANDOM_LEN)
    return encode_id(table_number, raw)


def id_table_number(id_str: str) -> int | None:
    """The table number of an ID, or None when ``id_str`` is not a valid ID.

    >>> id_table_number("kg27rxfv99gzp01wmph0gvt92d6hnvy6"), id_table_number("nope")
    (540, None)
    """
    try:
        return decode_id(id_str)[0]
    except InvalidValueError:
        return None

"""Tests for pyconvex.values.ids: Convex's document ID format."""

from __future__ import annotations

import random

import pytest

from pyconvex.errors import InvalidValueError
from pyconvex.values import decode_id, encode_id, id_table_number, new_id

KNOWN = "kg27rxfv99gzp01wmph0gvt92d6hnvy6"


def test_known_real_id_decodes_to_table_540() -> None:
    table, raw = decode_id(KNOWN)
    assert table == 540
    assert len(raw) == 16
    assert encode_id(540, raw) == KNOWN
    assert id_table_number(KNOWN) == 540


@pytest.mark.parametrize(
    ("table", "length"), [(1, 31), (127, 31), (128, 32), (16383, 32), (16384, 34), (2**32 - 1, 37)]
)
def test_round_trip_and_lengths(table: int, length: int) -> None:
    rng = random.Random(table)
    for _ in range(20):
        raw = rng.randbytes(16)
        id_str = encode_id(table, raw)
        assert len(id_str) == length
        assert set(id_str) <= set("0123456789abcdefghjkmnpqrstvwxyz")
        assert decode_id(id_str) == (table, raw)


def test_new_id_is_random_and_reproducible_with_rng() -> None:
    assert new_id(5) != new_id(5)
    assert new_id(5, random.Random(7)) == new_id(5, random.Random(7))
    assert id_table_number(new_id(42)) == 42


def test_encode_id_rejects_bad_input() -> None:
    with pytest.raises(InvalidValueError, match="Table number must be an int"):
        encode_id(0, bytes(16))
    with pytest.raises(InvalidValueError, match="needs 16 random bytes, got 3"):
        encode_id(1, b"abc")


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("short", "it has 5 characters, IDs have 31 to 37"),
        (KNOWN.upper(), "is not in the ID alphabet"),
        (KNOWN[:-1] + "u", "'u' is not in the ID alphabet"),
        (KNOWN[:-1] + ("7" if KNOWN[-1] != "7" else "8"), "checksum does not match"),
        (KNOWN[:10] + ("0" if KNOWN[10] != "0" else "1") + KNOWN[11:], "checksum does not match"),
        (KNOWN + "00", "it has 21 bytes, expected 20 for its table number"),
    ],
)
def test_decode_is_strict(bad: str, message: str) -> None:
    with pytest.raises(InvalidValueError, match=message):
        decode_id(bad)
    assert id_table_number(bad) is None


def test_decode_rejects_non_canonical_trailing_bits() -> None:
    # 31 characters carry 155 bits for 152 bits of data: the last 3 bits must be zero.
    id_str = new_id(3, random.Random(1))
    alphabet = "0123456789abcdefghjkmnpqrstvwxyz"
    last = alphabet.index(id_str[-1])
    tweaked = id_str[:-1] + alphabet[last | 1 if not last & 1 else last & ~1]
    with pytest.raises(InvalidValueError, match="canonical form"):
        decode_id(tweaked)


def test_id_table_number_of_non_strings() -> None:
    assert id_table_number(123) is None  # type: ignore[arg-type]


def _fletcher16(data: bytes) -> int:
    a = b = 0
    for byte in data:
        a = (a + byte) % 256
        b = (b + a) % 256
    return b * 256 + a


def _raw_id(body: bytes) -> str:
    import base64

    data = body + _fletcher16(body).to_bytes(2, "little")
    table = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", "0123456789abcdefghjkmnpqrstvwxyz")
    return base64.b32encode(data).decode().rstrip("=").translate(table)


def test_independent_encoder_agrees() -> None:
    raw = bytes(range(16))
    assert encode_id(540, raw) == _raw_id(bytes([0x9C, 0x04]) + raw)  # 540 = 0x1C | 4 << 7
    assert encode_id(5, raw) == _raw_id(bytes([5]) + raw)


def test_overlong_table_number_is_rejected() -> None:
    overlong = _raw_id(bytes([0x81, 0x00]) + bytes(16))  # table 1 spelled with two VInt bytes
    with pytest.raises(InvalidValueError, match="canonical form"):
        decode_id(overlong)


@pytest.mark.parametrize("char", [" ", "_", "+", "-", "\u0663", "i", "l", "o", "u", "A"])
def test_characters_outside_the_alphabet(char: str) -> None:
    bad = KNOWN[:5] + char + KNOWN[6:]
    with pytest.raises(InvalidValueError, match="not in the ID alphabet"):
        decode_id(bad)

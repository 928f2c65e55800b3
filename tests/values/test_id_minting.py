"""Minted ids are the ids ``encode_id`` makes: valid, of their table, all different (by column
for an import, or one at a time from a pool for an insert)."""

from __future__ import annotations

import os

import pytest

from pyconvex.values.id_minting import POOL_SIZE, mint_id, mint_ids
from pyconvex.values.ids import decode_id, encode_id


@pytest.mark.parametrize("number", [1, 10, 127, 128, 16_383, 16_384, 70_000, 2**32 - 1])
def test_minted_ids_decode_to_their_table_and_encode_back(number: int) -> None:
    for count in (1, 2, 7, 300):
        ids = mint_ids(number, count)
        assert len(ids) == count == len(set(ids))
        for doc_id in ids:
            table, random = decode_id(doc_id)
            assert table == number and encode_id(number, random) == doc_id


def test_minting_none_gives_none() -> None:
    assert mint_ids(10, 0) == []


@pytest.mark.parametrize("number", [1, 127, 128, 70_000])
def test_ids_minted_one_at_a_time_are_valid_and_all_different(number: int) -> None:
    ids = [mint_id(number) for _ in range(2 * POOL_SIZE + 3)]  # across pool refills
    assert len(set(ids)) == len(ids)
    for doc_id in ids:
        table, random = decode_id(doc_id)
        assert table == number and encode_id(number, random) == doc_id


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_forked_child_mints_ids_its_parent_does_not() -> None:
    mint_id(5)  # the parent holds a pool of table 5's ids
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its first ids, to the parent
        try:
            os.write(write, " ".join(mint_id(5) for _ in range(10)).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = set(pipe.read().split())
    os.waitpid(pid, 0)
    parent = {mint_id(5) for _ in range(POOL_SIZE)}
    assert len(child) == 10 and not child & parent

"""Ids minted by column are the ids ``encode_id`` makes: valid, of their table, all different."""

from __future__ import annotations

import pytest

from pyconvex.runtime.data.ids import mint_ids
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

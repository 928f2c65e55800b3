"""client.paginated(): pages as live subscriptions, load_more, a live insert into a loaded page,
and a page split when it grows (Convex's pagination protocol, as usePaginatedQuery runs it)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from pyconvex.client import AsyncConvexClient, PaginatedResult
from pyconvex.client.pagination import PaginatedSubscription
from pyconvex.dev.launcher import DevServer


async def _until(feed: PaginatedSubscription[Any], check: Any) -> PaginatedResult[Any]:
    """The first result (current or next) for which ``check`` holds."""
    async with asyncio.timeout(30):
        async for page in feed:
            if check(page):
                return page
    raise AssertionError("the paginated subscription ended")


def _ns(page: PaginatedResult[Any]) -> list[float]:
    return [item["n"] for item in page.results]


async def test_load_more_and_a_live_insert_into_a_loaded_page(server: DevServer) -> None:
    tag = uuid.uuid4().hex
    async with AsyncConvexClient(server.url) as client:
        await client.mutation("items:add", {"tag": tag, "ns": [float(n) for n in range(25)]})
        feed = client.paginated("items:page", {"tag": tag}, page_size=10)
        first = await _until(feed, lambda p: not p.is_loading)
        assert _ns(first) == [float(n) for n in range(10)]
        assert first.status == "CanLoadMore"

        assert feed.load_more()
        assert feed.status == "LoadingMore"
        assert not feed.load_more()  # the last page is still loading
        second = await _until(feed, lambda p: not p.is_loading)
        assert _ns(second) == [float(n) for n in range(20)]

        # A live insert into the first page grows it; nothing shifts into or out of page 2.
        await client.mutation("items:add", {"tag": tag, "ns": [5.5]})
        grown = feed.value
        assert grown is not None
        assert _ns(grown) == sorted([float(n) for n in range(20)] + [5.5])

        while feed.load_more():
            await _until(feed, lambda p: not p.is_loading)
        assert feed.status == "Exhausted"
        table = await client.query("items:all", {"tag": tag})
        assert feed.results == table and len(table) == 26
        feed.close()


async def test_a_page_that_grows_past_twice_the_page_size_is_split(server: DevServer) -> None:
    tag = uuid.uuid4().hex
    async with AsyncConvexClient(server.url) as client:
        await client.mutation("items:add", {"tag": tag, "ns": [float(n) for n in range(0, 40, 4)]})
        feed = client.paginated("items:page", {"tag": tag}, page_size=4)
        await _until(feed, lambda p: not p.is_loading)
        assert feed.load_more()
        await _until(feed, lambda p: not p.is_loading)
        assert _ns(feed.value or PaginatedResult()) == [0.0, 4.0, 8.0, 12.0, 16.0, 20.0, 24.0, 28.0]
        pages_before = len(feed._paginated.pages)

        # Nine more items inside the first page: it holds 13 > 2 * 4 and is split in two.
        await client.mutation("items:add", {"tag": tag, "ns": [0.1 * k for k in range(1, 10)]})
        split = await _until(feed, lambda p: len(feed._paginated.pages) > pages_before)
        expected = sorted([float(n) for n in range(0, 32, 4)] + [0.1 * k for k in range(1, 10)])
        assert _ns(split) == expected
        assert len(feed._paginated.pages) == pages_before + 1
        # Every item shows exactly once, in order, throughout: the split pages meet exactly.
        table = await client.query("items:all", {"tag": tag})
        while feed.load_more():
            await _until(feed, lambda p: not p.is_loading)
        assert feed.results == table


async def test_paginated_refuses_its_own_options(server: DevServer) -> None:
    async with AsyncConvexClient(server.url) as client:
        with pytest.raises(ValueError, match="paginationOpts"):
            client.paginated("items:page", {"tag": "t", "paginationOpts": {}})
        with pytest.raises(ValueError, match="page_size"):
            client.paginated("items:page", {"tag": "t"}, page_size=0)


async def test_closing_the_client_ends_a_paginated_subscription(server: DevServer) -> None:
    client = AsyncConvexClient(server.url)
    feed = client.paginated("items:page", {"tag": uuid.uuid4().hex}, page_size=3)
    pages = aiter(feed)
    assert (await anext(pages)).status in ("LoadingFirstPage", "Exhausted")
    await client.close()
    with pytest.raises(StopAsyncIteration):
        async with asyncio.timeout(10):
            while True:
                await anext(pages)

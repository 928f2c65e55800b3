"""`pyconvex dashboard`: a new one-time sign-in link to the running deployment's dashboard."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from support.cli import assert_all_documented, invoke, serve_project

from pyconvex.dev.launcher import DevServer


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    yield from serve_project(tmp_path_factory)


def test_every_option_is_documented() -> None:
    assert_all_documented("dashboard")


def test_prints_a_link_that_signs_in_once(dev: DevServer, monkeypatch: pytest.MonkeyPatch) -> None:
    r = invoke(dev.project, "dashboard", monkeypatch=monkeypatch)
    assert r.exit_code == 0, r.output
    link = r.stdout.strip()
    assert link.startswith(f"{dev.url}/dashboard?token=")
    first = httpx.get(link, follow_redirects=False)
    assert first.status_code == 303 and "pyconvex_dashboard_" in first.headers["set-cookie"]
    assert httpx.get(link, follow_redirects=False).status_code == 401
    other = invoke(dev.project, "dashboard", monkeypatch=monkeypatch).stdout.strip()
    assert other != link and httpx.get(other, follow_redirects=False).status_code == 303


def test_a_wrong_admin_key_is_refused(dev: DevServer, monkeypatch: pytest.MonkeyPatch) -> None:
    r = invoke(dev.project, "dashboard", "--admin-key", "nope", monkeypatch=monkeypatch)
    assert r.exit_code != 0 and "refused the admin key" in r.output

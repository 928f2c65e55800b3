"""pyconvex.client.admin without the command line: locating a deployment, and its errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyconvex.client.admin import AdminClient
from pyconvex.client.errors import AdminKeyError, DeploymentNotFoundError, UnreachableError
from pyconvex.dev.launcher import DevServer
from pyconvex.errors import PyconvexError
from pyconvex.project import ProjectError, write_deployment_file


def test_no_running_deployment_says_which_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PYCONVEX_URL", raising=False)
    monkeypatch.delenv("PYCONVEX_ADMIN_KEY", raising=False)
    with pytest.raises(DeploymentNotFoundError) as caught:
        AdminClient.locate(root=tmp_path)
    assert caught.value.project == str(tmp_path.resolve())
    assert "deployment.json" in caught.value.reason
    assert isinstance(caught.value, PyconvexError)


def test_a_running_deployment_without_admin_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PYCONVEX_ADMIN_KEY", raising=False)
    data = tmp_path / ".pyconvex"
    data.mkdir()
    write_deployment_file(data, "http://127.0.0.1:4000")
    with pytest.raises(AdminKeyError) as caught:
        AdminClient.locate(root=tmp_path)
    assert "admin_key does not exist" in caught.value.detail
    (data / "admin_key").write_text("k1\n")
    client = AdminClient.locate(root=tmp_path)
    assert (client.url, client.admin_key) == ("http://127.0.0.1:4000", "k1")


def test_explicit_url_and_key_need_no_project(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.pyconvex]\nport = 'x'\n")
    client = AdminClient.locate("http://127.0.0.1:1/", "key", root=tmp_path)
    assert client.url == "http://127.0.0.1:1"
    with pytest.raises(ProjectError):
        AdminClient.locate(None, "key", root=tmp_path)


def test_unreachable_url() -> None:
    client = AdminClient("http://127.0.0.1:1", "key", timeout=5)
    with pytest.raises(UnreachableError) as caught:
        client.tables()
    assert caught.value.url == "http://127.0.0.1:1"
    with pytest.raises(UnreachableError):
        next(iter(client.watch_query("messages:list", {})))


def test_watch_query_survives_a_restart(fresh_server: DevServer) -> None:
    # `pyconvex run --watch` runs on the client: it reconnects and resubscribes by itself.
    admin = AdminClient(fresh_server.url, fresh_server.admin_key, timeout=30)
    watch = admin.watch_query("messages:count", {"author": "w"})
    try:
        assert next(watch).value == 0.0
        fresh_server.restart()
        assert admin.run_function("messages:send", {"author": "w", "body": "x"}).ok
        outcome = next(watch)
        while outcome.value != 1.0:
            outcome = next(watch)
        assert outcome.ok and outcome.log_lines == []
        failing = admin.watch_query("messages:send", {"author": "w", "body": "x"})
        first = next(failing)  # a mutation is no query: the failure is an outcome
        assert not first.ok and "messages:send" in first.error_message
        failing.close()
    finally:
        watch.close()

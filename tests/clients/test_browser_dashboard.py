"""The dashboard in headless Chromium, against a real ``pyconvex dev`` (tests/clients/js/
dashboard.mjs drives it with playwright-core): refused without the one-time token; then
tables, a document inserted by another client shown live, an edit by keyboard checked by the
schema, functions run as no user and as a user, the live log, a scheduled function canceled, a
stored file previewed and deleted, an environment variable set, a SQL query; no console error,
nothing loaded from outside 127.0.0.1."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.browser import chromium_or_skip, keep_screenshot, sign_in_path

from pyconvex.dev.launcher import DevServer

pytestmark = pytest.mark.clients

PROJECT = Path(__file__).parent / "browser_project"


@pytest.fixture
def browser_server(tmp_path: Path) -> Iterator[DevServer]:
    project = tmp_path / "project"
    shutil.copytree(PROJECT, project, ignore=shutil.ignore_patterns("__pycache__", "_generated"))
    with DevServer(project) as server:
        yield server


def test_dashboard_in_chromium(npm: Any, browser_server: DevServer, tmp_path: Path) -> None:
    chromium = chromium_or_skip()
    os.environ.setdefault("PYCONVEX_CHROMIUM", chromium)
    shot = tmp_path / "dashboard.png"
    r = npm("dashboard.mjs", browser_server, sign_in_path(browser_server), str(shot), timeout=120)

    refused = r.step("refused", "event")
    assert refused["page"] == 401 and "Sign in" in refused["text"]
    assert refused["asset"] == 401 and refused["session"] == 401
    assert browser_server.admin_key not in refused["sessionBody"]
    signed_in = r.step("signed_in", "event")
    assert signed_in["url"] == f"{browser_server.url}/dashboard"
    assert signed_in["tables"] == ["messages", "notes", "_storage", "_scheduled_functions"]
    spent = r.step("spent", "event")
    assert spent["status"] == 401 and "does not work" in spent["text"]

    live = r.step("live_insert", "event")
    assert live["count"] == "1 document"
    edited = r.step("edited", "event")
    assert edited["focused"] == "TEXTAREA"
    assert "body" in edited["refusal"] and "string" in edited["refusal"].lower()
    assert edited["editorHidden"] is True
    assert edited["focusBack"] == f"Edit document {live['id']}"
    assert edited["stored"] == "edited in the dashboard"

    ran = r.step("ran", "event")
    assert ran["result"] == '"HI THERE"'
    assert "shouting hi there" in ran["logs"]
    assert ran["outcome"].startswith("Succeeded in ")
    identity = r.step("identity", "event")
    assert identity == {"event": "identity", "asUser": '"Ann"', "asNobody": "null"}

    assert r.step("screenshot", "event")["rows"] == 3
    keep_screenshot(shot)
    logs = r.step("logs", "event")["text"]
    assert "messages:shout" in logs and "shouting hi there" in logs and "success" in logs
    assert r.step("canceled", "event")["states"] == ["canceled"]
    file = r.step("file", "event")
    assert file["download"].startswith("/api/storage/") and "No files stored." in file["left"]
    assert r.step("env", "event")["value"] == "hello"
    assert r.step("sql", "event")["rows"] == [["ann", "1"], ["bob", "1"], ["carl", "1"]]
    assert r.step("problems", "event")["problems"] == []

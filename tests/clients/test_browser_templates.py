"""The chat and task-board templates' web frontends (React on the official npm `convex`
client, built by the template's own `npm run build`) served by `pyconvex dev` and used in
headless Chromium: live messages across tabs, optimistic send, "Load more", an uploaded image,
reactions, typing, search; tasks moving between columns live."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.browser import build_frontend, chromium_or_skip, keep_screenshot
from support.npm import CLIENTS

from pyconvex.dev.launcher import DevServer
from pyconvex.scaffold.create import create_project
from pyconvex.scaffold.template_dir import render_template

pytestmark = pytest.mark.clients


@pytest.mark.parametrize("template", ["chat", "tasks"])
def test_template_pins_the_tested_packages(template: str, tmp_path: Path) -> None:
    render_template(
        template, tmp_path, {"project_name": "x", "pyconvex_version": "0", "template": template}
    )
    package = json.loads((tmp_path / "package.json").read_text())
    lock = json.loads((tmp_path / "package-lock.json").read_text())
    tested = json.loads((CLIENTS / "package.json").read_text())["dependencies"]
    pinned = {**package["dependencies"], **package["devDependencies"]}
    assert {name: tested.get(name) for name in pinned} == pinned
    assert lock["packages"][""]["dependencies"] == package["dependencies"]
    assert set(package["scripts"]) >= {"dev", "build"}


def served_template(template: str, tmp_path: Path, node: str) -> Iterator[DevServer]:
    chromium_or_skip()
    project = tmp_path / template
    create_project(project, template)
    build_frontend(project, CLIENTS / "node_modules")
    with DevServer(project) as server:
        server.output.wait_for(f"web frontend at {server.url}/")
        yield server


@pytest.fixture
def chat(tmp_path: Path, node: str) -> Iterator[DevServer]:
    yield from served_template("chat", tmp_path, node)


def test_chat_in_two_tabs(npm: Any, chat: DevServer, tmp_path: Path) -> None:
    os.environ.setdefault("PYCONVEX_CHROMIUM", chromium_or_skip())
    shot = tmp_path / "chat.png"
    r = npm("chat.mjs", chat, str(shot), timeout=180)
    signed_in = r.all("event", "signed_in")
    assert [(x["who"], x["header"], x["url"]) for x in signed_in] == [
        (name, f"Signed in as {name}", f"{chat.url}/") for name in ("Ann", "Bob")
    ]
    first = r.step("first_page", "event")
    assert first == {"event": "first_page", "count": 20, "oldest": "old message 11",
                     "newest": "old message 30", "loadMore": True}  # fmt: skip
    more = r.step("loaded_more", "event")
    assert more["count"] == 30 and "beginning" in more["end"]
    assert r.step("sent", "event")["sawPending"] is True
    r.step("reacted", "event")
    assert r.step("typing", "event")["text"] == "Bob is typing…"
    image = r.step("image", "event")
    assert image["src"].startswith(f"{chat.url}/api/storage/") and image["alt"] == "picture.svg"
    assert r.step("search", "event")["results"] == ["hello from Ann"]
    keep_screenshot(shot)
    assert r.step("problems", "event")["problems"] == []


@pytest.fixture
def tasks(tmp_path: Path, node: str) -> Iterator[DevServer]:
    yield from served_template("tasks", tmp_path, node)


def test_task_board_in_two_tabs(npm: Any, tasks: DevServer, tmp_path: Path) -> None:
    os.environ.setdefault("PYCONVEX_CHROMIUM", chromium_or_skip())
    shot = tmp_path / "tasks.png"
    r = npm("tasks.mjs", tasks, str(shot), timeout=180)
    assert [x["header"] for x in r.all("event", "signed_in")] == [
        "Signed in as Ann",
        "Signed in as Bob",
    ]
    assert r.step("added", "event")["column"] == "backlog"
    moved = r.step("moved", "event")
    assert moved["column"] == moved["annColumn"] == "in_progress"
    refused = r.step("refused", "event")
    assert "'Write the docs' has to be done first" in refused["alert"]
    assert refused["column"] == "backlog"
    keep_screenshot(shot)
    assert r.step("problems", "event")["problems"] == []

"""`pyconvex data`: tables with counts, a table's documents in three formats, unknown tables."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from support.cli import assert_all_documented, flat, invoke, serve_project

from pyconvex.dev.launcher import DevServer
from pyconvex.failures import EXIT_USAGE


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    yield from serve_project(tmp_path_factory)


@pytest.fixture(scope="module")
def bodies(dev: DevServer) -> list[str]:
    """Three messages, sent in this order."""
    sent = ["first", "second [b]markup[/b]", "third"]
    with pytest.MonkeyPatch.context() as mp:
        for body in sent:
            r = invoke(
                dev.project, "run", "messages:send", json.dumps({"body": body}), monkeypatch=mp
            )
            assert r.exit_code == 0, r.output
    return sent


def test_every_option_is_documented() -> None:
    assert_all_documented("data")


def test_lists_tables_with_document_counts(
    dev: DevServer, bodies: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    r = invoke(dev.project, "data", monkeypatch=monkeypatch)
    assert r.exit_code == 0, r.output
    assert "empty 0" in flat(r.stdout) and "messages 3" in flat(r.stdout)
    r = invoke(dev.project, "data", "--format", "json", monkeypatch=monkeypatch)
    assert json.loads(r.stdout) == [
        {"table": "empty", "documents": 0},
        {"table": "messages", "documents": 3},
    ]


def test_shows_newest_or_oldest_documents(
    dev: DevServer, bodies: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    r = invoke(dev.project, "data", "messages", "--format", "jsonl", monkeypatch=monkeypatch)
    docs = [json.loads(line) for line in r.stdout.splitlines()]
    assert [d["body"] for d in docs] == bodies[::-1]
    assert all(set(d) == {"_id", "_creationTime", "body"} for d in docs)
    r = invoke(
        dev.project, "data", "messages", "--order", "asc", "--limit", "2", "--format", "json",
        monkeypatch=monkeypatch,
    )  # fmt: skip
    assert [d["body"] for d in json.loads(r.stdout)] == bodies[:2]


def test_table_format_shows_fields_as_written(
    dev: DevServer, bodies: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    r = invoke(dev.project, "data", "messages", monkeypatch=monkeypatch)
    assert r.exit_code == 0
    text = flat(r.stdout)
    assert "_id body _creationTime" in text
    assert "second [b]markup[/b]" in text  # not taken as rich markup
    r = invoke(dev.project, "data", "empty", monkeypatch=monkeypatch)
    assert "Table empty is empty." in r.stdout


def test_unknown_table_lists_the_tables(dev: DevServer, monkeypatch: pytest.MonkeyPatch) -> None:
    r = invoke(dev.project, "data", "mesages", monkeypatch=monkeypatch)
    assert r.exit_code == EXIT_USAGE
    text = flat(r.stderr)
    assert "Cannot show table mesages" in text
    assert (
        "No table 'mesages' in this deployment. Tables: empty, messages (system tables: _scheduled_functions, _storage)."
        in text
    )


def test_bad_options_are_usage_errors(dev: DevServer, monkeypatch: pytest.MonkeyPatch) -> None:
    r = invoke(dev.project, "data", "messages", "--order", "up", monkeypatch=monkeypatch)
    assert r.exit_code == EXIT_USAGE
    r = invoke(dev.project, "data", "messages", "--limit", "0", monkeypatch=monkeypatch)
    assert r.exit_code == EXIT_USAGE


def test_ids_are_never_wrapped(
    dev: DevServer, bodies: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "50")  # narrower than an id plus the other columns
    r = invoke(dev.project, "data", "messages", monkeypatch=monkeypatch)
    assert r.exit_code == 0, r.output
    listed = invoke(dev.project, "data", "messages", "--format", "json", monkeypatch=monkeypatch)
    ids = [d["_id"] for d in json.loads(listed.stdout)]
    lines = r.stdout.splitlines()
    for doc_id in ids:
        assert any(doc_id in line for line in lines), f"{doc_id} is wrapped in:\n{r.stdout}"


def test_shows_the_system_tables(dev: DevServer, monkeypatch: pytest.MonkeyPatch) -> None:
    r = invoke(dev.project, "run", "messages:remind_later", monkeypatch=monkeypatch)
    job_id = json.loads(r.stdout)
    r = invoke(dev.project, "run", "messages:upload_url", monkeypatch=monkeypatch)
    posted = httpx.post(
        json.loads(r.stdout), content=b"hello", headers={"Content-Type": "text/plain"}
    )
    storage_id = posted.json()["storageId"]

    r = invoke(
        dev.project, "data", "_scheduled_functions", "--format", "json", monkeypatch=monkeypatch
    )
    assert r.exit_code == 0, r.output
    [job] = [j for j in json.loads(r.stdout) if j["_id"] == job_id]
    assert job["name"] == "messages:noop" and job["state"] == {"kind": "pending"}
    r = invoke(dev.project, "data", "_storage", "--format", "json", monkeypatch=monkeypatch)
    [file] = [f for f in json.loads(r.stdout) if f["_id"] == storage_id]
    assert file["size"] == 5 and file["contentType"] == "text/plain"
    r = invoke(dev.project, "data", monkeypatch=monkeypatch)
    assert "_storage" not in r.stdout  # the listing shows the project's own tables

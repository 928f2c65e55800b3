"""`pyconvex sql`: read-only DuckDB SQL over the live tables' views, in three formats; anything
that would write is refused and changes nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from support.cli import assert_all_documented, flat, invoke, serve_project

from pyconvex.dev.launcher import DevServer
from pyconvex.failures import EXIT_USAGE


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    yield from serve_project(tmp_path_factory)


@pytest.fixture(scope="module")
def bodies(dev: DevServer) -> list[str]:
    sent = ["alpha", "beta", "beta"]
    with pytest.MonkeyPatch.context() as mp:
        for body in sent:
            r = invoke(
                dev.project, "run", "messages:send", json.dumps({"body": body}), monkeypatch=mp
            )
            assert r.exit_code == 0, r.output
    return sent


def test_every_option_is_documented() -> None:
    assert_all_documented("sql")


def test_a_query_over_a_table_view(
    dev: DevServer, bodies: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    query = "SELECT body, count(*) AS n FROM messages GROUP BY body ORDER BY body"
    r = invoke(dev.project, "sql", query, "--format", "json", monkeypatch=monkeypatch)
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == [{"body": "alpha", "n": 1}, {"body": "beta", "n": 2}]

    r = invoke(dev.project, "sql", query, "--format", "csv", monkeypatch=monkeypatch)
    assert r.stdout.splitlines() == ["body,n", "alpha,1", "beta,2"]

    r = invoke(dev.project, "sql", query, monkeypatch=monkeypatch)
    text = flat(r.stdout)
    assert "body n VARCHAR BIGINT" in text and "alpha 1" in text  # each name over its type
    assert "2 rows" in text


def test_system_columns_and_whole_documents(
    dev: DevServer, bodies: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    r = invoke(
        dev.project, "sql",
        "SELECT _id, _creationTime, _document->>'body' AS b FROM messages ORDER BY _creationTime",
        "--format", "json", monkeypatch=monkeypatch,
    )  # fmt: skip
    rows = json.loads(r.stdout)
    assert [row["b"] for row in rows][:3] == bodies
    assert all(isinstance(row["_id"], str) and row["_creationTime"] > 0 for row in rows)


def test_limit_leaves_out_the_rest_and_says_so(
    dev: DevServer, bodies: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    r = invoke(
        dev.project, "sql", "SELECT body FROM messages", "--limit", "1", "--format", "json",
        monkeypatch=monkeypatch,
    )  # fmt: skip
    assert len(json.loads(r.stdout)) == 1
    assert "only the first 1 rows" in r.stderr


@pytest.mark.parametrize(
    ("query", "kind"),
    [
        ("DELETE FROM messages", "DELETE"),
        ("COPY (SELECT * FROM messages) TO '/tmp/pyconvex-sql-test.csv'", "COPY"),
        ("ATTACH ':memory:' AS other", "ATTACH"),
        ("INSERT INTO _documents SELECT * FROM _documents", "INSERT"),
        ("DROP VIEW messages", "DROP"),
    ],
)
def test_writes_are_refused_and_change_nothing(
    dev: DevServer, bodies: list[str], monkeypatch: pytest.MonkeyPatch, query: str, kind: str
) -> None:
    r = invoke(dev.project, "sql", query, monkeypatch=monkeypatch)
    assert r.exit_code == EXIT_USAGE
    text = flat(r.stderr)
    assert (
        f"pyconvex sql runs read-only queries (SELECT, WITH ... SELECT); this is a {kind}" in text
    )
    r = invoke(dev.project, "sql", "SELECT count(*) AS n FROM messages", "--format", "json",
               monkeypatch=monkeypatch)  # fmt: skip
    assert json.loads(r.stdout) == [{"n": len(bodies)}]


def test_several_statements_and_bad_sql_are_clear_errors(
    dev: DevServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = invoke(dev.project, "sql", "SELECT 1; DELETE FROM messages", monkeypatch=monkeypatch)
    assert r.exit_code == EXIT_USAGE
    assert "Send one statement at a time" in flat(r.stderr)
    r = invoke(dev.project, "sql", "SELEC body FROM messages", monkeypatch=monkeypatch)
    assert r.exit_code == EXIT_USAGE
    assert "syntax error" in flat(r.stderr).lower()
    r = invoke(dev.project, "sql", "SELECT nope FROM messages", monkeypatch=monkeypatch)
    assert "nope" in flat(r.stderr)

"""`pyconvex run` against a real `pyconvex dev` process (found through .pyconvex/), driven with
CliRunner and as a subprocess (``--watch``); the project and helpers are in support/cli.py."""

from __future__ import annotations

import json
import re
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.cli import assert_all_documented, flat, invoke, make_project, pyconvex, serve_project

from pyconvex.cli.admin_command import plain
from pyconvex.dev.launcher import DevServer, OutputLines
from pyconvex.failures import EXIT_AUTH, EXIT_FAILURE, EXIT_UNAVAILABLE, EXIT_USAGE
from pyconvex.values import Int64


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    yield from serve_project(tmp_path_factory)


# -- the tests -------------------------------------------------------------------------------


def test_every_option_is_documented() -> None:
    assert_all_documented("run")


def test_runs_mutations_and_queries_and_prints_json(
    dev: DevServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = invoke(dev.project, "run", "messages:count", monkeypatch=monkeypatch)
    sent = invoke(
        dev.project, "run", "messages:send", '{"body": "hi [b]there"}', monkeypatch=monkeypatch
    )
    assert sent.exit_code == 0, sent.output
    assert re.fullmatch(r'"[0-9a-z]{31,32}"\n', sent.stdout)  # the new id, as JSON
    assert "[LOG] sending hi [b]there" in sent.stderr  # log lines, on stderr
    after = invoke(dev.project, "run", "messages:count", monkeypatch=monkeypatch)
    assert float(after.stdout) == float(before.stdout) + 1


def test_internal_functions_and_identity(dev: DevServer, monkeypatch: pytest.MonkeyPatch) -> None:
    r = invoke(dev.project, "run", "messages:secret", monkeypatch=monkeypatch)
    assert (r.exit_code, r.stdout) == (0, '"internal ok"\n')
    r = invoke(dev.project, "run", "messages:whoami", monkeypatch=monkeypatch)
    assert r.stdout == "null\n"
    r = invoke(
        dev.project,
        "run",
        "messages:whoami",
        "--identity",
        '{"subject": "u1", "name": "Ann"}',
        monkeypatch=monkeypatch,
    )
    assert " ".join(r.stdout.split()) == '{ "subject": "u1", "name": "Ann" }'


def test_values_print_as_readable_json(dev: DevServer, monkeypatch: pytest.MonkeyPatch) -> None:
    r = invoke(dev.project, "run", "messages:typed", monkeypatch=monkeypatch)
    assert " ".join(r.stdout.split()) == '{ "n": 7, "b": { "$bytes": "aGk=" }, "x": 1.5 }'
    shown = json.dumps(plain([Int64(-2), 3.0, float("nan"), float("-inf")]))
    assert shown == '[-2, 3.0, "NaN", "-Infinity"]'


def test_numbers_print_as_convex_test_returns_them(
    dev: DevServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A float64 keeps its decimal point (ConvexTest returns 2.0), an int64 is an integer.
    r = invoke(dev.project, "run", "messages:numbers", monkeypatch=monkeypatch)
    assert json.loads(r.stdout) == {"f": 2.0, "i": 3.0, "big": 5}
    assert " ".join(r.stdout.split()) == '{ "f": 2.0, "i": 3.0, "big": 5 }'


def test_arguments_and_identity_are_json5(dev: DevServer, monkeypatch: pytest.MonkeyPatch) -> None:
    r = invoke(
        dev.project, "run", "messages:echo", "{x: 'one', n: 2, big: {'$integer': 'BQAAAAAAAAA='},}",
        monkeypatch=monkeypatch,
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == {"x": "one", "n": 2.0, "big": 5}
    r = invoke(
        dev.project, "run", "messages:whoami", "--identity", "{subject: 'u1', name: 'Ann'}",
        monkeypatch=monkeypatch,
    )  # fmt: skip
    assert json.loads(r.stdout) == {"subject": "u1", "name": "Ann"}


def test_function_errors_are_one_block_with_exit_code_1(
    dev: DevServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = invoke(dev.project, "run", "messages:send", '{"body": " "}', monkeypatch=monkeypatch)
    assert r.exit_code == EXIT_FAILURE
    text = flat(r.stderr)
    assert "error: messages:send failed" in text
    # Convex's text: the request line, then the data as compact JSON, then the user's frame.
    assert re.search(r"\[Request ID: [0-9a-f]{16}\] Server Error", text)
    assert 'Uncaught ConvexError: {"code":"EMPTY_BODY","hint":"say something"}' in text
    assert "at send (convex/messages.py:" in text
    assert 'error data: { "code": "EMPTY_BODY", "hint": "say something" }' in text
    r = invoke(dev.project, "run", "messages:crash", monkeypatch=monkeypatch)
    assert r.exit_code == EXIT_FAILURE
    assert "Uncaught RuntimeError: boom" in flat(r.stderr)
    r = invoke(dev.project, "run", "messages:sendd", monkeypatch=monkeypatch)
    assert r.exit_code == EXIT_FAILURE
    assert "Could not find function for 'messages:sendd'. Did you mean 'messages:send'" in flat(
        r.stderr
    )


def test_runs_actions(dev: DevServer, monkeypatch: pytest.MonkeyPatch) -> None:
    r = invoke(dev.project, "run", "messages:shout", "{text: 'hey'}", monkeypatch=monkeypatch)
    assert r.exit_code == 0, r.output
    result = json.loads(r.stdout)
    assert result["text"] == "HEY" and isinstance(result["count"], float)
    assert "[LOG] shouting hey" in r.stderr
    r = invoke(dev.project, "run", "messages:shout", "{text: ''}", monkeypatch=monkeypatch)
    assert r.exit_code == EXIT_FAILURE
    text = flat(r.stderr)
    assert "error: messages:shout failed" in text
    assert 'error data: { "code": "NOTHING_TO_SHOUT" }' in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["messages:send", "{body: }"], "The arguments are not valid JSON5"),
        (["messages:send", "[1]"], "The arguments must be an object"),
        (["messages:whoami", "--identity", '"u1"'], "--identity must be an object"),
        (["messages:whoami", "--identity", "{a"], "--identity is not valid JSON5"),
    ],
)
def test_bad_input_is_a_usage_error(
    dev: DevServer, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    r = invoke(dev.project, "run", *args, monkeypatch=monkeypatch)
    assert r.exit_code == EXIT_USAGE
    assert message in flat(r.stderr)


def test_without_a_running_deployment_says_to_start_dev(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_project(tmp_path)
    r = invoke(tmp_path, "run", "messages:count", monkeypatch=monkeypatch)
    assert r.exit_code == EXIT_UNAVAILABLE
    assert "No running deployment" in flat(r.stderr)
    assert "pyconvex dev" in flat(r.stderr)
    # A deployment.json left behind by a process that is gone counts as none.
    (tmp_path / ".pyconvex").mkdir()
    (tmp_path / ".pyconvex" / "deployment.json").write_text(
        '{"url": "http://127.0.0.1:9", "pid": 999999999}'
    )
    r = invoke(tmp_path, "run", "messages:count", monkeypatch=monkeypatch)
    assert r.exit_code == EXIT_UNAVAILABLE


def test_url_and_admin_key_options(
    dev: DevServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = ["--url", dev.url, "--admin-key", dev.admin_key]
    r = invoke(tmp_path, "run", "messages:secret", *target, monkeypatch=monkeypatch)
    assert (r.exit_code, r.stdout) == (0, '"internal ok"\n')
    wrong = ["--url", dev.url, "--admin-key", "pyconvex-local|wrong"]
    r = invoke(tmp_path, "run", "messages:secret", *wrong, monkeypatch=monkeypatch)
    assert r.exit_code == EXIT_AUTH
    assert "refused the admin key" in flat(r.stderr)
    dead = ["--url", "http://127.0.0.1:9", "--admin-key", "k"]
    r = invoke(tmp_path, "run", "messages:secret", *dead, monkeypatch=monkeypatch)
    assert r.exit_code == EXIT_UNAVAILABLE
    assert "Cannot reach the deployment at http://127.0.0.1:9" in flat(r.stderr)


def test_watch_as_a_user(dev: DevServer) -> None:
    identity = '{"subject": "u9", "name": "Zed"}'
    watcher = pyconvex(dev.project, "run", "messages:whoami", "--watch", "--identity", identity)
    assert watcher.stdout is not None
    lines = OutputLines(watcher.stdout)
    try:
        lines.wait_for('"name": "Zed"')
    finally:
        watcher.send_signal(signal.SIGINT)
        code = watcher.wait(20)
        lines.join()
        watcher.stdout.close()
    assert code == 0
    assert any('"subject": "u9"' in line for line in lines.lines)


def test_watch_prints_each_new_result_until_interrupted(dev: DevServer) -> None:
    watcher = pyconvex(dev.project, "run", "messages:count", "--watch")
    try:
        assert watcher.stdout is not None
        lines = OutputLines(watcher.stdout)
        first = float(lines.lines[lines.wait_for(r"^\d+\.0$")])
        sender = pyconvex(dev.project, "run", "messages:send", '{"body": "watched"}')
        assert sender.wait(60) == 0
        assert sender.stdout is not None
        sender.stdout.close()
        second = float(lines.lines[lines.wait_for(rf"^{first + 1}$")])
        assert second == first + 1
    finally:
        watcher.send_signal(signal.SIGINT)
        code = watcher.wait(20)
        if watcher.stdout is not None:
            lines.join()
            watcher.stdout.close()
    assert code == 0


def test_watch_an_internal_query_with_the_admin_key(dev: DevServer) -> None:
    # The admin session may subscribe to internal functions (a client never can).
    watcher = pyconvex(dev.project, "run", "messages:secret", "--watch")
    assert watcher.stdout is not None
    lines = OutputLines(watcher.stdout)
    try:
        lines.wait_for('"internal ok"')
    finally:
        watcher.send_signal(signal.SIGINT)
        code = watcher.wait(20)
        lines.join()
        watcher.stdout.close()
    assert code == 0

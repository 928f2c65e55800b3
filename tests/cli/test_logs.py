"""`pyconvex logs`: recent executions from the history, then live ones until Ctrl-C."""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support.cli import assert_all_documented, invoke, pyconvex, serve_project

from pyconvex.dev.launcher import DevServer, OutputLines
from pyconvex.failures import EXIT_UNAVAILABLE


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    yield from serve_project(tmp_path_factory)


def test_every_option_is_documented() -> None:
    assert_all_documented("logs")


def test_history_shows_kind_path_outcome_and_log_lines(
    dev: DevServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    invoke(dev.project, "run", "messages:send", '{"body": "logged"}', monkeypatch=monkeypatch)
    invoke(dev.project, "run", "messages:crash", monkeypatch=monkeypatch)
    invoke(dev.project, "env", "set", "NOT_IN_LOGS", "x", monkeypatch=monkeypatch)
    r = invoke(dev.project, "logs", "--history", "2", "--no-follow", monkeypatch=monkeypatch)
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert " M messages:send " in lines[0] and lines[0].endswith(" success")
    assert lines[1] == "    [LOG] sending logged"
    assert " Q messages:crash " in lines[2] and re.search(
        r" failure \[Request ID: [0-9a-f]{16}\]$", lines[2]
    )
    trace = "\n".join(lines[3:])
    assert 'messages.py", line' in trace and "in crash" in trace
    assert "RuntimeError: boom" in trace
    assert "pyconvex/runtime" not in trace  # the user's frames only, each on one line
    assert all(line.startswith("    ") for line in lines[3:])
    assert "_system" not in r.stdout  # `pyconvex env` writes are not the user's executions
    verbose = invoke(
        dev.project, "logs", "--history", "2", "--no-follow", "-v", monkeypatch=monkeypatch
    )
    assert "pyconvex/runtime/functions" in verbose.stdout


def test_follow_streams_new_executions_until_interrupted(dev: DevServer) -> None:
    watcher = pyconvex(dev.project, "logs", "--history", "0")
    assert watcher.stdout is not None
    lines = OutputLines(watcher.stdout)
    try:
        start = lines.wait_for("Watching logs of")  # printed once the stream is open
        sender = pyconvex(dev.project, "run", "messages:send", '{"body": "streamed"}')
        assert sender.wait(60) == 0
        assert sender.stdout is not None
        sender.stdout.close()
        found = lines.wait_for(r" M messages:send .* success$", start)
        assert lines.wait_for(r"^    \[LOG\] sending streamed$", found) == found + 1
    finally:
        watcher.send_signal(signal.SIGINT)
        code = watcher.wait(20)
        lines.join()
        watcher.stdout.close()
    assert code == 0


def test_scheduled_runs_and_http_actions_are_shown(
    dev: DevServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    scheduled = invoke(dev.project, "run", "messages:remind_soon", monkeypatch=monkeypatch)
    assert scheduled.exit_code == 0, scheduled.output
    answer = httpx.get(f"{dev.url}/http/hello", params={"name": "Ada"}, timeout=30)
    assert answer.text == "hi"
    for _ in range(100):  # the scheduled run comes once remind_soon is durable
        r = invoke(dev.project, "logs", "--history", "10", "--no-follow", monkeypatch=monkeypatch)
        if "messages:reminded" in r.stdout:
            break
        time.sleep(0.1)
    lines = r.stdout.splitlines()
    [run] = [i for i, line in enumerate(lines) if " M messages:reminded (scheduled) " in line]
    assert lines[run].endswith(" success") and lines[run + 1] == "    [LOG] reminded soon"
    [request] = [i for i, line in enumerate(lines) if " H GET /hello " in line]
    assert lines[request].endswith(" success") and lines[request + 1] == "    [LOG] hello to Ada"
    assert " M messages:remind_soon " in r.stdout  # the client's own call: no label


def test_no_deployment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    r = invoke(tmp_path, "logs", "--no-follow", monkeypatch=monkeypatch)
    assert r.exit_code == EXIT_UNAVAILABLE

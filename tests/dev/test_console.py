"""The dev console's execution lines (pyconvex/dev/console.py)."""

from __future__ import annotations

from rich.console import Console

from pyconvex.dev.console import ExecutionPrinter
from pyconvex.protocol import LogEntry


def _printed(entry: LogEntry, *, verbose: bool = False) -> str:
    console = Console(record=True, width=200, color_system=None)
    ExecutionPrinter(console, verbose=verbose, full_date=False).print(entry)
    return console.export_text()


def test_a_failure_names_its_request_id_and_shows_the_users_frames() -> None:
    entry = LogEntry(
        1, 0.0, "mutation", "messages:send", 1.5,
        "[Request ID: 0123456789abcdef] Server Error\nUncaught ValueError: boom\n",
        ["[LOG] 'sending'"],
        traceback="Traceback:\n  convex/messages.py, line 3, in send\nValueError: boom\n",
        full_traceback="Traceback:\n  pyconvex/x.py\n  convex/messages.py, line 3\nValueError: boom\n",
        request_id="0123456789abcdef",
    )  # fmt: skip
    text = _printed(entry)
    header = text.splitlines()[0]
    assert "M messages:send" in header and "failure" in header
    assert "[Request ID: 0123456789abcdef]" in header
    assert "    [LOG] 'sending'" in text
    assert "convex/messages.py, line 3, in send" in text
    assert "pyconvex/x.py" not in text
    assert "pyconvex/x.py" in _printed(entry, verbose=True)


def test_a_success_has_no_request_line() -> None:
    entry = LogEntry(2, 0.0, "query", "messages:list", 0.2, None, ["[LOG] 1"], request_id="ab")
    header = _printed(entry).splitlines()[0]
    assert "success" in header and "Request ID" not in header


def test_a_run_no_client_asked_for_says_what_started_it() -> None:
    cron = LogEntry(3, 0.0, "mutation", "tasks:mark_overdue", 0.4, None, [], trigger="cron overdue")
    assert "M tasks:mark_overdue (cron overdue) " in _printed(cron).splitlines()[0]
    http = LogEntry(4, 0.0, "http_action", "POST /webhooks/tasks", 2.0, None, [])
    assert "H POST /webhooks/tasks " in _printed(http).splitlines()[0]
    assert LogEntry.from_json(cron.to_json()) == cron

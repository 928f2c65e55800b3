"""The progress of ``pyconvex import`` / ``export``: rich bars with rows, rows/s and bytes on a
terminal, plain lines with the same figures off one."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

import pyconvex.cli.data_target as data_target
from pyconvex.cli.data_target import ProgressView


def events(view: ProgressView) -> None:
    view.bytes(24_000_000)
    view.bytes(24_000_000)
    view.progress({"phase": "reading", "table": "docs", "done": 48_000_000,
                   "total": 48_000_000, "unit": "bytes"})  # fmt: skip
    for done in (2_000, 4_000):
        view.progress({"phase": "checking", "table": "docs", "done": done, "total": 4_000})
    view.progress({"phase": "committing", "table": "", "done": 0, "total": 0})


def test_off_a_terminal_plain_lines_say_rows_rate_and_bytes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(data_target, "PLAIN_EVERY_S", 0.0)
    clock = iter(range(1000))
    monkeypatch.setattr(data_target.time, "monotonic", lambda: float(next(clock)))
    plain = io.StringIO()
    console = Console(file=io.StringIO(), force_terminal=False)
    with ProgressView("import", console, plain, total_bytes=48_000_000) as view:
        events(view)
    lines = plain.getvalue().splitlines()
    assert lines[0] == "import: transfer 24.0/48.0 MB"  # (a rate from the second on)
    assert any(line.startswith("import: transfer 48.0/48.0 MB (") and "MB/s" in line
               for line in lines)  # fmt: skip
    assert "import: checking docs 2,000/4,000 rows" in lines
    assert any(
        line.startswith("import: checking docs 4,000/4,000 rows (") and "rows/s), done" in line
        for line in lines
    )
    assert "import: committing" in lines
    assert lines[-1].endswith(", done")


def test_plain_lines_are_few_and_none_end_a_failure() -> None:
    plain = io.StringIO()
    console = Console(file=io.StringIO(), force_terminal=False)
    with pytest.raises(RuntimeError), ProgressView("export", console, plain) as view:
        for done in range(0, 100_000, 1_000):
            view.progress({"phase": "exporting", "table": "t", "done": done, "total": 100_000})
        raise RuntimeError("refused")
    lines = plain.getvalue().splitlines()
    assert 1 <= len(lines) <= 3 and not any("done" in line for line in lines)


def test_on_a_terminal_rich_bars_show_rows_rate_and_bytes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = iter(range(1000))

    def now() -> float:
        return float(next(clock))

    monkeypatch.setattr(data_target.time, "monotonic", now)
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=150, get_time=now)
    plain = io.StringIO()
    with ProgressView("import", console, plain, total_bytes=48_000_000) as view:
        events(view)
        assert view._bar is not None
        view._bar.refresh()
        shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen.getvalue())
    assert plain.getvalue() == ""
    assert "import: transfer" in shown and "48.0/48.0 MB" in shown and "MB/s" in shown
    assert "import: checking docs" in shown and "4,000/4,000 rows" in shown
    assert "rows/s" in shown
    [committing] = [line for line in shown.splitlines() if "import: committing" in line][-1:]
    assert "rows" not in committing

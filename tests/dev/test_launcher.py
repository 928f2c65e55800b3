"""pyconvex.dev.launcher: a server that cannot start says why; child output is read on a thread
and waited for by pattern (servers that do start are every other server test)."""

from __future__ import annotations

import contextlib
import io
import socket
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from pyconvex.dev.launcher import DevServer, DevServerError, OutputLines
from pyconvex.errors import PyconvexError


def test_a_server_that_exits_is_an_error_with_its_output(tmp_path: Path) -> None:
    server = DevServer(tmp_path)  # no convex/ directory: `pyconvex dev` exits with a hint
    with pytest.raises(DevServerError) as caught:
        server.start()
    assert isinstance(caught.value, PyconvexError)
    assert "exited with code 2" in str(caught.value)
    assert "No functions directory" in str(caught.value)
    assert not server.running and server.returncode == 2
    assert server.stop() == 2  # stopping again is harmless


def test_output_lines_keep_absolute_indexes_when_bounded() -> None:
    out = OutputLines(io.StringIO("".join(f"line {i}\n" for i in range(10))), keep=3)
    out.join()
    assert out.lines == ["line 7", "line 8", "line 9"] and out.dropped == 7
    assert out.wait_for(r"line \d", start=8) == 8
    assert out.line(9) == "line 9" and out.since(9) == ["line 9"]
    assert out.mark() == 10


def test_waiting_for_a_line_that_never_comes_fails_at_end_of_output() -> None:
    out = OutputLines(io.StringIO("serving\nready\n"))
    assert out.wait_for(lambda line: line == "ready") == 1
    with pytest.raises(TimeoutError, match="the output ended") as caught:
        out.wait_for("never", timeout=30)  # no 30 s wait: the stream has ended
    assert "ready" in str(caught.value)  # the last lines are shown


def test_a_restart_keeps_the_site_port_even_when_port_plus_one_is_taken(tmp_path: Path) -> None:
    (tmp_path / "convex").mkdir()
    (tmp_path / "convex" / "http.py").write_text(
        "from pyconvex import HttpRouter\nhttp = HttpRouter()\n"
    )
    with DevServer(tmp_path) as server, contextlib.ExitStack() as held:
        site_port = server.site_port
        assert site_port is not None and server.site_url.endswith(f":{site_port}")
        # Port 0 chose the site port freely; what a fixed port would take may be in use.
        blocker = held.enter_context(socket.socket())
        with contextlib.suppress(OSError):  # already taken: the same situation
            blocker.bind(("127.0.0.1", server.port + 1))
            blocker.listen()
        server.restart()
        assert server.site_port == site_port
        server.stop()  # stopped (a crash), then started again as at first: the same
        server.start()
        assert server.site_port == site_port
        with pytest.raises(urllib.error.HTTPError) as answer:
            urllib.request.urlopen(f"{server.site_url}/nowhere", timeout=30)
        answer.value.close()
        assert answer.value.code == 404  # the site port answers: no route there

"""`pyconvex dev`: project settings, and a real server process on a free port."""

from __future__ import annotations

import re
import signal
import textwrap
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from pyconvex.cli.main import app
from pyconvex.dev.launcher import DevServer
from pyconvex.project import DEFAULT_PORT, ProjectError, ProjectSettings

FUNCTIONS = """
from pyconvex import mutation, query, v

@query(args={})
async def hello(ctx):
    print("saying hello")
    return "hello"
"""


def make_project(root: Path, functions: str = "convex", pyproject: str = "") -> Path:
    (root / functions).mkdir(parents=True)
    (root / functions / "greet.py").write_text(textwrap.dedent(FUNCTIONS))
    if pyproject:
        (root / "pyproject.toml").write_text(textwrap.dedent(pyproject))
    return root


def test_settings_default_without_pyproject(tmp_path: Path) -> None:
    s = ProjectSettings.load(tmp_path)
    assert s.functions_dir == tmp_path.resolve() / "convex"
    assert s.data_dir == tmp_path.resolve() / ".pyconvex"
    assert s.port == DEFAULT_PORT


def test_settings_from_tool_table(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.pyconvex]\nfunctions = "backend"\nport = 4000\ndata_dir = "state"\n'
    )
    s = ProjectSettings.load(tmp_path)
    assert (s.functions_dir.name, s.data_dir.name, s.port) == ("backend", "state", 4000)


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[tool.pyconvex]\nport = "x"\n', "port"),
        ("[tool.pyconvex]\nfunctoins = 'x'\n", "Unknown [tool.pyconvex] setting"),
        ("[tool.pyconvex\n", "not valid TOML"),
    ],
)
def test_bad_settings_are_explained(tmp_path: Path, toml: str, message: str) -> None:
    (tmp_path / "pyproject.toml").write_text(toml)
    with pytest.raises(ProjectError, match=re.escape(message)):
        ProjectSettings.load(tmp_path)


def test_dev_without_functions_dir_exits_with_a_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["dev", "--port", "0"])
    assert result.exit_code == 2
    assert "No functions directory" in result.output


@pytest.mark.parametrize("configured", [False, True])
def test_dev_serves_on_a_free_port_until_interrupted(tmp_path: Path, configured: bool) -> None:
    if configured:
        project = make_project(
            tmp_path, "backend", '[tool.pyconvex]\nfunctions = "backend"\ndata_dir = "state"\n'
        )
    else:
        project = make_project(tmp_path)
    server = DevServer(project).start()
    url = server.url
    try:
        assert server.port > 0
        assert httpx.get(f"{url}/version", timeout=10).text.startswith("pyconvex")
        r = httpx.post(f"{url}/api/query", json={"path": "greet:hello", "args": {}}, timeout=10)
        assert r.json() == {
            "status": "success",
            "value": "hello",
            "logLines": ["[LOG] saying hello"],
        }
    finally:
        code = server.stop(signal.SIGINT)  # Ctrl-C
    assert code == 0
    assert (project / ("state" if configured else ".pyconvex")).is_dir()
    assert any(
        "saying hello" in line for line in server.output.lines
    )  # log lines reach the console


CONSOLE_FUNCTIONS = """
from pyconvex import mutation, query, v

@query(args={})
async def hello(ctx):
    print("saying hello")
    return "hello"

def helper():
    return 1 / 0

@query(args={})
async def crash(ctx):
    print("about to fail")
    return helper()

@mutation(args={"n": v.float64()})
async def takes(ctx, n):
    return n
"""


@pytest.mark.parametrize("verbose", [False, True])
def test_the_console_shows_each_execution_once_with_the_users_frames(
    tmp_path: Path, verbose: bool
) -> None:
    project = make_project(tmp_path)
    (project / "convex" / "greet.py").write_text(CONSOLE_FUNCTIONS)
    server = DevServer(project, *(["-v"] if verbose else [])).start()
    url = server.url
    try:
        calls = [
            ("query", "greet:hello", {}),
            ("query", "greet:crash", {}),
            ("mutation", "greet:takes", {"n": "x"}),  # refused by the argument validator
            ("query", "greet:nope", {}),  # no such function
        ]
        for kind, path, args in calls:
            httpx.post(f"{url}/api/{kind}", json={"path": path, "args": args}, timeout=10)
    finally:
        code = server.stop(signal.SIGINT)  # Ctrl-C
    assert code == 0
    shown = server.output.lines
    text = "\n".join(shown)
    assert text.count("saying hello") == 1  # each log line once, under its function
    header = next(i for i, line in enumerate(shown) if "greet:hello" in line)
    assert shown[header + 1].strip() == "[LOG] saying hello"
    assert re.search(r'greet\.py", line \d+, in crash', text) and "ZeroDivisionError" in text
    assert ("pyconvex/runtime/functions" in text) == verbose  # pyconvex's frames: -v only
    assert "Value at .n must be v.float64(), got string 'x'" in text
    assert "Could not find public function for 'greet:nope'" in text
    assert shown[-1] == (
        "pyconvex dev: stopped. The data is kept in .pyconvex/; `pyconvex dev` serves it again."
    )


def test_data_dir_is_private_to_its_user(tmp_path: Path) -> None:
    root = make_project(tmp_path)
    lax = root / ".pyconvex"
    lax.mkdir(mode=0o755)
    lax.chmod(0o755)
    (lax / "old.txt").write_text("from an older pyconvex")
    (lax / "old.txt").chmod(0o644)
    with DevServer(root) as server:
        r = httpx.post(f"{server.url}/api/query", json={"path": "greet:hello", "args": {}})
        assert r.json()["value"] == "hello"
        assert lax.stat().st_mode & 0o777 == 0o700
        files = {p.name: p.stat().st_mode & 0o777 for p in lax.iterdir() if p.is_file()}
        assert {"data.duckdb", "admin_key", "deployment.json", "old.txt"} <= set(files)
        assert all(mode == 0o600 for mode in files.values()), files
        storage = lax / "storage"
        if storage.exists():
            assert storage.stat().st_mode & 0o077 == 0


def test_listening_beyond_loopback_warns(tmp_path: Path) -> None:
    from pyconvex.dev.serve import is_loopback, network_warning

    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("[::1]")
    assert is_loopback("localhost") and is_loopback("127.0.0.2")
    assert not is_loopback("0.0.0.0") and not is_loopback("::") and not is_loopback("myhost")
    text = network_warning("0.0.0.0", ProjectSettings.load(tmp_path))
    assert "reachable from the network" in text and "admin key" in text
    assert "only protection" in text and "--host 127.0.0.1" in text

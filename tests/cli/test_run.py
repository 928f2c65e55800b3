"""`pyconvex run` against a real `pyconvex dev` process (found through .pyconvex/), driven with
CliRunner and as a subprocess (``--watch``). Also home of the helpers the other admin-command
tests (data, logs, env) share: :class:`DevProcess`, :func:`flat`, :func:`invoke`."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest
from typer.main import get_command
from typer.testing import CliRunner, Result

from pyconvex.cli.admin_command import plain
from pyconvex.cli.main import app
from pyconvex.failures import EXIT_AUTH, EXIT_FAILURE, EXIT_UNAVAILABLE, EXIT_USAGE
from pyconvex.values import Int64

REPO = Path(__file__).resolve().parents[2]
READY = re.compile(r"pyconvex dev: ready in")
SERVING = re.compile(r"pyconvex dev: serving (http://\S+)")

SCHEMA = """
from pyconvex import define_schema, define_table, v

schema = define_schema({
    "messages": define_table({"body": v.string(), "n": v.optional(v.int64())}),
    "empty": define_table({"x": v.float64()}),
})
"""

MESSAGES = """
from pyconvex import ConvexError, env, internal_query, mutation, query, v


@mutation(args={"body": v.string()})
async def send(ctx, body):
    print("sending", body)
    if not body.strip():
        raise ConvexError({"code": "EMPTY_BODY", "hint": "say something"})
    return await ctx.db.insert("messages", {"body": body})


@query
async def count(ctx) -> float:
    return float(len(await ctx.db.query("messages").collect()))


@query
async def latest(ctx):
    return [m["body"] for m in await ctx.db.query("messages").order("desc").take(3)]


@internal_query
async def secret(ctx) -> str:
    return "internal ok"


@query
async def whoami(ctx):
    identity = await ctx.auth.get_user_identity()
    if identity is None:
        return None
    return {"subject": identity.subject, "name": identity.name}


@query
async def numbers(ctx):
    return {"f": 2.0, "i": 3, "big": __import__("pyconvex").Int64(5)}


@query(args={"x": v.string(), "n": v.float64(), "big": v.int64()})
async def echo(ctx, x, n, big):
    return {"x": x, "n": n, "big": big}


@query
async def typed(ctx):
    return {"n": __import__("pyconvex").Int64(7), "b": b"hi", "x": 1.5}


@query
async def greeting(ctx) -> str:
    return env.get("GREETING", "hello")


@query
async def crash(ctx):
    raise RuntimeError("boom")
"""


def make_project(root: Path) -> Path:
    (root / "convex").mkdir(parents=True)
    (root / "convex" / "schema.py").write_text(textwrap.dedent(SCHEMA))
    (root / "convex" / "messages.py").write_text(textwrap.dedent(MESSAGES))
    return root


def _child_env() -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "NO_COLOR": "1",
        "COLUMNS": "200",
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }


def pyconvex(root: Path, *args: str) -> subprocess.Popen[str]:
    """``python -m pyconvex ARGS`` in ``root``, stdout and stderr merged, text mode."""
    return subprocess.Popen(
        [sys.executable, "-m", "pyconvex", *args],
        cwd=root,
        env=_child_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


class Lines:
    """The lines a child process prints, read on a thread and waited for with a timeout."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self.lines.append("<EOF>")
            self._changed.notify_all()

    def wait_for(self, pattern: str, start: int = 0, timeout: float = 30) -> int:
        """The index of the first line from ``start`` on that matches ``pattern``."""
        regex = re.compile(pattern)

        def found() -> int | None:
            for i in range(start, len(self.lines)):
                if regex.search(self.lines[i]):
                    return i
            return None

        with self._changed:
            if not self._changed.wait_for(lambda: found() is not None, timeout):
                pytest.fail(f"no line matching {pattern!r} in:\n" + "\n".join(self.lines))
            index = found()
            assert index is not None
            return index

    def join(self) -> None:
        self._thread.join(30)


class DevProcess:
    """`pyconvex dev --port 0` serving ``root``; ``stop()`` ends it by pid."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.proc = pyconvex(root, "dev", "--port", "0")
        assert self.proc.stdout is not None
        self.output = Lines(self.proc.stdout)
        serving = self.output.lines[self.output.wait_for(SERVING.pattern)]
        match = SERVING.search(serving)
        assert match is not None
        self.url = match.group(1)
        # "ready" comes after deployment.json is written.
        self.output.wait_for(READY.pattern)

    @property
    def admin_key(self) -> str:
        return (self.root / ".pyconvex" / "admin_key").read_text().strip()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.output.join()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def serve_project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevProcess]:
    """Module fixture body: a project with MESSAGES served by a real `pyconvex dev`."""
    dev = DevProcess(make_project(tmp_path_factory.mktemp("project")))
    try:
        yield dev
    finally:
        dev.stop()


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevProcess]:
    yield from serve_project(tmp_path_factory)


def invoke(
    root: Path, *args: str, monkeypatch: pytest.MonkeyPatch, input: str | None = None
) -> Result:
    """Run the CLI in process from ``root`` (so it finds the deployment through .pyconvex/)."""
    monkeypatch.chdir(root)
    monkeypatch.delenv("PYCONVEX_URL", raising=False)
    monkeypatch.delenv("PYCONVEX_ADMIN_KEY", raising=False)
    return CliRunner().invoke(app, list(args), catch_exceptions=False, input=input)


def flat(text: str) -> str:
    """Output with rich's box drawing removed and whitespace collapsed, for substring checks."""
    return " ".join(re.sub(r"[╭╮╰╯│─┃━┏┓┗┛┡┩┣┫┳┻╇╋└┘┌┐├┤┬┴┼]", " ", text).split())


def assert_all_documented(*path: str) -> None:
    """Every parameter of the command at ``path`` has help text, as does the command."""
    command: Any = get_command(app)  # typer's own click: duck-typed
    for name in path:
        command = command.commands[name]
    assert command.help, f"{' '.join(path)} has no help"
    for param in command.params:
        assert getattr(param, "help", None), f"{' '.join(path)} {param.name} has no help"


# -- the tests -------------------------------------------------------------------------------


def test_every_option_is_documented() -> None:
    assert_all_documented("run")


def test_runs_mutations_and_queries_and_prints_json(
    dev: DevProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = invoke(dev.root, "run", "messages:count", monkeypatch=monkeypatch)
    sent = invoke(
        dev.root, "run", "messages:send", '{"body": "hi [b]there"}', monkeypatch=monkeypatch
    )
    assert sent.exit_code == 0, sent.output
    assert re.fullmatch(r'"[0-9a-z]{31,32}"\n', sent.stdout)  # the new id, as JSON
    assert "[LOG] sending hi [b]there" in sent.stderr  # log lines, on stderr
    after = invoke(dev.root, "run", "messages:count", monkeypatch=monkeypatch)
    assert float(after.stdout) == float(before.stdout) + 1


def test_internal_functions_and_identity(dev: DevProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    r = invoke(dev.root, "run", "messages:secret", monkeypatch=monkeypatch)
    assert (r.exit_code, r.stdout) == (0, '"internal ok"\n')
    r = invoke(dev.root, "run", "messages:whoami", monkeypatch=monkeypatch)
    assert r.stdout == "null\n"
    r = invoke(
        dev.root,
        "run",
        "messages:whoami",
        "--identity",
        '{"subject": "u1", "name": "Ann"}',
        monkeypatch=monkeypatch,
    )
    assert " ".join(r.stdout.split()) == '{ "subject": "u1", "name": "Ann" }'


def test_values_print_as_readable_json(dev: DevProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    r = invoke(dev.root, "run", "messages:typed", monkeypatch=monkeypatch)
    assert " ".join(r.stdout.split()) == '{ "n": 7, "b": { "$bytes": "aGk=" }, "x": 1.5 }'
    shown = json.dumps(plain([Int64(-2), 3.0, float("nan"), float("-inf")]))
    assert shown == '[-2, 3.0, "NaN", "-Infinity"]'


def test_numbers_print_as_convex_test_returns_them(
    dev: DevProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A float64 keeps its decimal point (ConvexTest returns 2.0), an int64 is an integer.
    r = invoke(dev.root, "run", "messages:numbers", monkeypatch=monkeypatch)
    assert json.loads(r.stdout) == {"f": 2.0, "i": 3.0, "big": 5}
    assert " ".join(r.stdout.split()) == '{ "f": 2.0, "i": 3.0, "big": 5 }'


def test_arguments_and_identity_are_json5(
    dev: DevProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = invoke(
        dev.root, "run", "messages:echo", "{x: 'one', n: 2, big: {'$integer': 'BQAAAAAAAAA='},}",
        monkeypatch=monkeypatch,
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == {"x": "one", "n": 2.0, "big": 5}
    r = invoke(
        dev.root, "run", "messages:whoami", "--identity", "{subject: 'u1', name: 'Ann'}",
        monkeypatch=monkeypatch,
    )  # fmt: skip
    assert json.loads(r.stdout) == {"subject": "u1", "name": "Ann"}


def test_function_errors_are_one_block_with_exit_code_1(
    dev: DevProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = invoke(dev.root, "run", "messages:send", '{"body": " "}', monkeypatch=monkeypatch)
    assert r.exit_code == EXIT_FAILURE
    text = flat(r.stderr)
    assert "error: messages:send failed" in text
    assert 'Uncaught ConvexError: {"code": "EMPTY_BODY", "hint": "say something"}' in text
    assert 'error data: { "code": "EMPTY_BODY", "hint": "say something" }' in text
    r = invoke(dev.root, "run", "messages:crash", monkeypatch=monkeypatch)
    assert r.exit_code == EXIT_FAILURE
    assert "Uncaught RuntimeError: boom" in flat(r.stderr)
    r = invoke(dev.root, "run", "messages:sendd", monkeypatch=monkeypatch)
    assert r.exit_code == EXIT_FAILURE
    assert "Could not find function for 'messages:sendd'. Did you mean 'messages:send'" in flat(
        r.stderr
    )


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
    dev: DevProcess, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    r = invoke(dev.root, "run", *args, monkeypatch=monkeypatch)
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
    dev: DevProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
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


def test_watch_as_a_user(dev: DevProcess) -> None:
    identity = '{"subject": "u9", "name": "Zed"}'
    watcher = pyconvex(dev.root, "run", "messages:whoami", "--watch", "--identity", identity)
    assert watcher.stdout is not None
    lines = Lines(watcher.stdout)
    try:
        lines.wait_for('"name": "Zed"')
    finally:
        watcher.send_signal(signal.SIGINT)
        code = watcher.wait(20)
        lines.join()
        watcher.stdout.close()
    assert code == 0
    assert any('"subject": "u9"' in line for line in lines.lines)


def test_watch_prints_each_new_result_until_interrupted(dev: DevProcess) -> None:
    watcher = pyconvex(dev.root, "run", "messages:count", "--watch")
    try:
        assert watcher.stdout is not None
        lines = Lines(watcher.stdout)
        first = float(lines.lines[lines.wait_for(r"^\d+\.0$")])
        sender = pyconvex(dev.root, "run", "messages:send", '{"body": "watched"}')
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


def test_watch_an_internal_query_with_the_admin_key(dev: DevProcess) -> None:
    # The admin session may subscribe to internal functions (a client never can).
    watcher = pyconvex(dev.root, "run", "messages:secret", "--watch")
    assert watcher.stdout is not None
    lines = Lines(watcher.stdout)
    try:
        lines.wait_for('"internal ok"')
    finally:
        watcher.send_signal(signal.SIGINT)
        code = watcher.wait(20)
        lines.join()
        watcher.stdout.close()
    assert code == 0

"""Suite-wide setup: the shared helpers in tests/support get pytest's assertion rewriting, and a
full run that collects too few tests fails instead of passing quietly."""

from __future__ import annotations

import pytest

pytest.register_assert_rewrite("support")

#: A full run (pytest with no paths, -k, -m or --deselect) collects at least this many tests.
#: Fewer means a directory or module silently stopped being collected (a wrong testpaths or
#: pythonpath, a file renamed away from test_*.py): raise it now and then as the suite grows.
MIN_TESTS = 1300


def pytest_collection_finish(session: pytest.Session) -> None:
    config = session.config
    full_run = (
        config.args_source is pytest.Config.ArgsSource.TESTPATHS
        and not config.option.keyword
        and not config.option.markexpr
        and not config.option.deselect
    )
    if full_run and len(session.items) < MIN_TESTS:
        pytest.exit(
            f"the full suite collected {len(session.items)} tests, fewer than the "
            f"{MIN_TESTS} it has (tests/conftest.py MIN_TESTS): some tests are no longer "
            "collected — check testpaths/pythonpath in pyproject.toml and the file names",
            returncode=pytest.ExitCode.TESTS_FAILED,
        )

"""Which persistence a deployment's data file gets (``store/persistence.py``): the write-ahead
log in front of DuckDB written by the writer process, unless the environment says otherwise::

    persistence = open_persistence(data_dir / "pyconvex.duckdb")   # None: in memory

* ``PYCONVEX_WAL=off``: no log; a commit is durable once DuckDB committed it;
* ``PYCONVEX_WRITER=thread``: DuckDB on a thread of this process, not the writer process.
"""

from __future__ import annotations

import os
from pathlib import Path

from pyconvex.runtime.store.logged_persistence import LoggedPersistence
from pyconvex.runtime.store.persistence import Persistence
from pyconvex.runtime.store.process_persistence import ProcessPersistence
from pyconvex.runtime.store.thread_persistence import ThreadPersistence


def writer_process_enabled() -> bool:
    """Whether file-backed deployments commit through the writer process (default) rather
    than a thread of this process (``PYCONVEX_WRITER=thread``)."""
    return os.environ.get("PYCONVEX_WRITER", "process").lower() != "thread"


#: The DuckDB writer's niceness behind the write-ahead log: it catches up when the server's
#: event loop leaves it the CPU (measured: waking it at once delayed the response to a write
#: after idle by ~1.4 ms on 2 cores).
WRITER_NICE = 10


def open_persistence(path: Path | None) -> Persistence:
    """The persistence for a data file (``None``: in memory); see ``store/persistence.py``.
    A data file gets a write-ahead log in front (``store/logged_persistence.py``) unless
    ``PYCONVEX_WAL=off``: then a commit is durable once DuckDB committed it."""
    if path is None:
        return ThreadPersistence(None)
    if os.environ.get("PYCONVEX_WAL", "on").lower() in ("off", "0", "false", "no"):
        return ProcessPersistence(path) if writer_process_enabled() else ThreadPersistence(path)
    behind: Persistence = (
        ProcessPersistence(path, nice=WRITER_NICE)
        if writer_process_enabled()
        else ThreadPersistence(path)
    )
    return LoggedPersistence(behind, path)

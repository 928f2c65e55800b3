"""The code a deployment serves, kept in its data directory so a restart serves it again::

    <data_dir>/modules/current                 the hash of the code serving (one line)
    <data_dir>/modules/<hash[:16]>/convex/...  the files of each code staged or serving

``pyconvex deploy`` stages a bundle (:meth:`CodeStore.stage`: its own directory, written
completely before it is renamed into place), the deployment loads it from there, and only once
it serves does :meth:`CodeStore.commit` name it ``current`` (one atomic rename) and remove the
others. A refused or failed deploy leaves ``current`` as it was::

    store = CodeStore(data_dir)
    functions_dir = store.stage(bundle)     # load_functions(functions_dir) ...
    store.commit(bundle.hash)               # after the switch
    store.current()                          # (hash, functions_dir) of the code serving
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

from pyconvex.dev.bundle import Bundle, BundleError
from pyconvex.project import ensure_private_dir, private_files

MODULES_DIR = "modules"
CURRENT_FILE = "current"


class CodeStore:
    """The deployed code under ``<data_dir>/modules`` (module docstring)."""

    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir / MODULES_DIR

    def _dir(self, code_hash: str) -> Path:
        return self.root / code_hash[:16]

    def current(self) -> tuple[str, Path] | None:
        """``(hash, functions directory)`` of the code last committed, None if none was.

        Raises :class:`BundleError` when its files are missing or were changed on disk."""
        try:
            code_hash = (self.root / CURRENT_FILE).read_text().strip()
        except FileNotFoundError:
            return None
        directory = self._dir(code_hash)
        found = [p for p in directory.iterdir() if p.is_dir()] if directory.is_dir() else []
        if len(found) != 1 or Bundle.from_dir(found[0]).hash != code_hash:
            raise BundleError(
                f"The deployed code in {directory} is missing or was changed on disk (it no "
                f"longer matches {code_hash[:12]}). Deploy again with `pyconvex deploy`, or "
                f"remove {self.root / CURRENT_FILE} to serve the project's functions directory."
            )
        return code_hash, found[0]

    def stage(self, bundle: Bundle) -> Path:
        """Write ``bundle`` into its own directory (once: staging the same code again reuses
        it) and return the functions directory to load it from."""
        directory = self._dir(bundle.hash)
        target = directory / bundle.name
        if target.is_dir() and Bundle.from_dir(target).hash == bundle.hash:
            return target
        ensure_private_dir(self.root)
        partial = self.root / f".{directory.name}.{os.getpid()}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        with private_files():  # the code is the deployment's, like its data
            bundle.write_to(partial)
        shutil.rmtree(directory, ignore_errors=True)
        os.replace(partial, directory)
        return target

    def commit(self, code_hash: str) -> None:
        """Name ``code_hash`` (staged) the code serving, in one atomic rename."""
        ensure_private_dir(self.root)
        tmp = self.root / f".{CURRENT_FILE}.{os.getpid()}"
        with private_files():
            tmp.write_text(code_hash + "\n")
        os.replace(tmp, self.root / CURRENT_FILE)

    def prune(self, keep: set[str]) -> None:
        """Remove the staged code of every hash not in ``keep`` (and leftovers of writes cut
        short)."""
        names = {h[:16] for h in keep if h}
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(self.root):
                if entry.is_dir(follow_symlinks=False) and entry.name not in names:
                    shutil.rmtree(entry.path, ignore_errors=True)

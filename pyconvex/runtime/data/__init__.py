"""Data in and out of a deployment: ``pyconvex export``, ``import`` and ``sql``.

Owns the export writers (:mod:`.export`: Convex's snapshot ZIP, JSONL, CSV, Parquet), the import
readers and the all-or-nothing import commit (:mod:`.import_files`, :mod:`.import_commit`), the
typed columns of a table (:mod:`.columns`), the columnar copy of tables that ``sql`` and the
CSV / Parquet exports read at one snapshot (:mod:`.mirror`, :mod:`.sql`), the operations with
their progress (:mod:`.service`), and the same without a server (:mod:`.local`).

It sits above :mod:`~pyconvex.runtime.functions` (it works on a ``Deployment``: its store, schema
and committer) and below :mod:`~pyconvex.runtime.net`, whose admin routes serve it; the CLI uses
it directly when no deployment runs. May import :mod:`pyconvex.runtime.store`,
:mod:`pyconvex.runtime.query`, :mod:`pyconvex.runtime.functions`, ``pyconvex.server``,
``pyconvex.values`` and ``pyconvex.errors``.
"""

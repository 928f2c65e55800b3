"""Talking to a running deployment from Python: :mod:`~pyconvex.client.admin` (the admin API the
command line uses: run any function, watch a query, read tables, logs and environment variables)
and :mod:`~pyconvex.client.errors` (what can go wrong, one class per way to recover).

May import only ``pyconvex.values``, ``pyconvex.server``, ``pyconvex.protocol`` and
``pyconvex.project``: a client needs no engine, and importing it loads no DuckDB.
"""

"""The engine behind ``pyconvex dev`` / ``serve``, in layers that import one way::

    store  <-  query  <-  functions  <-  net        auth: a leaf beside them

* :mod:`~pyconvex.runtime.store` — documents in memory (MVCC), indexes, read and write sets,
  search indexes, and durability (group commit, the DuckDB log, the writer process).
* :mod:`~pyconvex.runtime.query` — transactions and the ``ctx.db`` implementation.
* :mod:`~pyconvex.runtime.functions` — loading and running user code: the sandbox, the ctx
  objects, schema pushes, and :class:`~pyconvex.runtime.functions.deployment.Deployment`.
* :mod:`~pyconvex.runtime.auth` — the admin key, :class:`UserIdentity`, callers.
* :mod:`~pyconvex.runtime.net` — the HTTP API, the sync WebSocket, subscriptions, admin routes.

Each layer's ``__init__`` says what it owns and what it may import; ``tests/test_architecture.py``
enforces it. Importing this package imports nothing.
"""

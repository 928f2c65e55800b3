"""Transactions and the ``ctx.db`` implementation over the store.

Owns :mod:`.transaction` (a snapshot read or a mutation's writes, with limits and read sets),
:mod:`.database_impl` (``ctx.db`` reader and writer), :mod:`.query_impl` (``ctx.db.query(...)``
chains), index ranges, filters, full-text search queries and pagination cursors.

May import: :mod:`pyconvex.runtime.store`, ``pyconvex.server``, ``pyconvex.values``,
``pyconvex.errors``. Not functions, auth or net: a transaction knows nothing of who runs it.
"""

"""The store: documents in memory, their indexes, and their durability.

Owns the in-memory MVCC store (:mod:`.memory`), index keys (:mod:`.index`), read and write sets
(:mod:`.read_set`), full-text search indexes (:mod:`.search_index`, kept current through the
store's write-observer interface), the schema's index specs (:mod:`.schema_state`), and the way
commits become durable: the group committer (:mod:`.committer`) hands batches to persistence
through one Protocol (:mod:`.persistence`), implemented by a DuckDB file and its writer process
(:mod:`.process_persistence`, :mod:`.writer_process`, :mod:`.duckdb_log`) or DuckDB on a thread
(:mod:`.thread_persistence`).

May import: ``pyconvex.values``, ``pyconvex.errors``, ``pyconvex.server`` (schema definitions).
Nothing above it (query, functions, net) and nothing about functions or sockets.
"""

"""The store: documents in memory, their indexes, and their durability.

Owns the in-memory MVCC store (:mod:`.memory`), index keys (:mod:`.index`), read and write sets
(:mod:`.read_set`), full-text search indexes (:mod:`.search_index`, kept current through the
store's write-observer interface), the schema's index specs (:mod:`.schema_state`), and the way
commits become durable: the group committer (:mod:`.committer`), the DuckDB log
(:mod:`.duckdb_log`) and the writer process that runs it (:mod:`.writer_process`).

May import: ``pyconvex.values``, ``pyconvex.errors``, ``pyconvex.server`` (schema definitions).
Nothing above it (query, functions, net) and nothing about functions or sockets.
"""

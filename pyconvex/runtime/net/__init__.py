"""Sockets and HTTP: the deployment on the network.

Owns the Starlette app and the server launcher (:mod:`.app`, :mod:`.event_loop`), the HTTP
API (:mod:`.http_api`), the sync WebSocket (:mod:`.sync_socket`: the socket, on `websockets`' Sans-I/O protocol;
:mod:`.sync_session`: the protocol state machine), shared subscriptions and their invalidation
(:mod:`.subscriptions`) and the admin routes (:mod:`.admin_routes`).

May import every runtime layer below it (store, query, functions, auth) and
``pyconvex.protocol``; nothing imports it but the dev loop, the CLI and tests.
"""

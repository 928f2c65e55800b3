"""The sync endpoint's knobs (:class:`SyncConfig`)."""

from __future__ import annotations

from dataclasses import dataclass

from pyconvex.runtime.net.sync_session import SessionLimits


@dataclass(frozen=True, slots=True)
class SyncConfig:
    """Knobs of the sync endpoint.

    ``ping_interval``: seconds of outbound silence before a JSON Ping (Convex: 15).
    ``max_outbound_bytes``: a socket whose unsent frames exceed this is closed as overloaded.
    ``close_timeout``: how long a close may wait on a stuck client before the TCP connection
    is aborted.
    ``max_queued_mutations``: mutations a socket may have unanswered (waiting to run, or run
    and waiting to be durable) before its input is paused (TCP backpressure on a client that
    sends faster than they commit); reading resumes at half of it.
    ``max_message_bytes``: the largest client message (Convex's limit on function arguments).
    ``max_subscriptions``: queries one socket may hold; more fail saying so.
    ``max_transition_bytes``: the most one Transition carries (more goes out in several), and
    the unsent bytes past which a socket's query work waits for it to drain.
    ``query_turn_seconds``: query work (added queries, re-identified ones) per loop turn,
    across all sockets, before the loop serves everything else again.
    ``max_total_outbound_bytes``: unsent bytes of all sockets together; past it, the socket
    with the most is closed as overloaded (so slow readers cannot take the server's memory).
    ``compression``: accept permessage-deflate from clients that offer it (frames shared by
    a fan-out go out compressed, once for all; see :mod:`~pyconvex.runtime.net.ws_frames`).
    """

    ping_interval: float = 15.0
    max_outbound_bytes: int = 32 * 1024 * 1024
    close_timeout: float = 5.0
    max_queued_mutations: int = 1024
    max_message_bytes: int = 16 * 1024 * 1024
    max_subscriptions: int = 2048
    max_transition_bytes: int = 16 * 1024 * 1024
    query_turn_seconds: float = 0.005
    max_total_outbound_bytes: int = 256 * 1024 * 1024
    compression: bool = True

    def session_limits(self) -> SessionLimits:
        return SessionLimits(
            max_queued_mutations=self.max_queued_mutations,
            max_subscriptions=self.max_subscriptions,
            max_transition_bytes=self.max_transition_bytes,
        )

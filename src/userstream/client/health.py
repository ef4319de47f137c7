"""What the stream knows about itself, as data (issue 3 items 3 and 7), sans-I/O.

`StreamGap` is the marker yielded before the next event whenever events could have been
missed; `StreamHealth` is a snapshot of the stream's state; `HealthTracker` is the mutable
record the stream updates and snapshots at a given `now`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace

__all__ = ["ConnectionState", "GapReason", "HealthTracker", "StreamGap", "StreamHealth"]


class GapReason(enum.StrEnum):
    """Why events could have been missed."""

    DISCONNECTED = "disconnected"
    """The stream connection dropped (or stopped answering pings) and was reopened."""
    KEY_EXPIRED = "key_expired"
    """`listenKeyExpired` arrived for our key (it expired, or was closed elsewhere)."""
    KEY_REJECTED = "key_rejected"
    """A keepalive answered -1125: the key no longer exists."""
    KEY_LOST = "key_lost"
    """Keepalives kept failing until the key's 60 minutes ran out."""
    ROTATION = "rotation"
    """A rotation's new connection delivered none of the frames the old one had within
    `Reconnect.rotation_timeout_ms`; the old one was closed anyway."""
    OVERFLOW = "overflow"
    """The consumer fell behind and `overflow="drop_oldest"` dropped events."""


class ConnectionState(enum.StrEnum):
    STARTING = "starting"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    ROTATING = "rotating"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class StreamGap:
    """Events after `since_ms` may be missing: resynchronise (e.g. REST snapshots) now.

    Attributes:
        since_ms: for a connection problem, the last moment (on the stream's clock) a frame
            arrived on the lost connection, or when it opened; for an overflow, the `E` of
            the first event dropped.
        reason: what happened.
        detail: a human-readable detail (close code, error message); never a secret.
    """

    since_ms: int
    reason: GapReason
    detail: str = ""

    def merged(self, later: StreamGap) -> StreamGap:
        """One marker for two gaps with no event between them: the earlier start wins."""
        if later.since_ms < self.since_ms:
            return replace(later, detail=later.detail or self.detail)
        return self


@dataclass(frozen=True, slots=True)
class StreamHealth:
    """A snapshot of the stream (issue 3 item 7). Ages are `None` when not applicable.

    Attributes:
        state: the connection state.
        key_age_ms: time since the current listenKey was issued.
        last_keepalive_ms: when the last keepalive finished (success or not).
        last_keepalive_ok: its result; `None` before the first keepalive.
        last_keepalive_error: its error, if it failed.
        last_event_ms: when the last event arrived (stream clock), `None` before any.
        connection_age_ms: time since the current connection opened.
        reconnects: connections opened after the first (rotations excluded).
        rotations: make-before-break replacements done before the 24-hour cap.
        keys_issued: listenKeys issued (1 after a clean start).
        gaps: gap markers emitted.
        events: events received and passed on (after duplicates were dropped).
        duplicates: second copies dropped during a rotation (a frame that came on both
            the old and the new connection).
        skipped: frames skipped (unknown event types, undecodable frames).
        buffered: events waiting for the consumer.
        last_reason: the last reason the stream reconnected or issued a new key.
    """

    state: ConnectionState
    key_age_ms: int | None
    last_keepalive_ms: int | None
    last_keepalive_ok: bool | None
    last_keepalive_error: str | None
    last_event_ms: int | None
    connection_age_ms: int | None
    reconnects: int
    rotations: int
    keys_issued: int
    gaps: int
    events: int
    duplicates: int
    skipped: int
    buffered: int
    last_reason: str | None


@dataclass(slots=True)
class HealthTracker:
    """The mutable record behind `StreamHealth`; every field is a clock time or a count."""

    state: ConnectionState = ConnectionState.STARTING
    key_created_ms: int | None = None
    last_keepalive_ms: int | None = None
    last_keepalive_ok: bool | None = None
    last_keepalive_error: str | None = None
    last_event_ms: int | None = None
    connected_ms: int | None = None
    reconnects: int = 0
    rotations: int = 0
    keys_issued: int = 0
    gaps: int = 0
    events: int = 0
    duplicates: int = 0
    skipped: int = 0
    last_reason: str | None = None

    def key_issued(self, now_ms: int) -> None:
        self.key_created_ms = now_ms
        self.keys_issued += 1

    def keepalive(self, now_ms: int, error: str | None) -> None:
        self.last_keepalive_ms = now_ms
        self.last_keepalive_ok = error is None
        self.last_keepalive_error = error

    def snapshot(self, now_ms: int, buffered: int = 0) -> StreamHealth:
        def age(since: int | None) -> int | None:
            return None if since is None else max(0, now_ms - since)

        connected = self.state in (ConnectionState.CONNECTED, ConnectionState.ROTATING)
        return StreamHealth(
            state=self.state,
            key_age_ms=age(self.key_created_ms),
            last_keepalive_ms=self.last_keepalive_ms,
            last_keepalive_ok=self.last_keepalive_ok,
            last_keepalive_error=self.last_keepalive_error,
            last_event_ms=self.last_event_ms,
            connection_age_ms=age(self.connected_ms) if connected else None,
            reconnects=self.reconnects,
            rotations=self.rotations,
            keys_issued=self.keys_issued,
            gaps=self.gaps,
            events=self.events,
            duplicates=self.duplicates,
            skipped=self.skipped,
            buffered=buffered,
            last_reason=self.last_reason,
        )

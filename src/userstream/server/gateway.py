"""Fan-out of account events to stream connections: the data plane's hot path.

Connections are indexed by the listenKey they subscribed to. An event is encoded once (an
`EncodedEvent` from the admin intake or the bus already is, and is not encoded again); its raw
frame and each combined frame (`{"stream": <name>, "data": <event>}`, one per distinct stream
name) are built once and the same bytes are queued on every matching connection (spec §4.3).
Each account's events are delivered synchronously in acceptance order, so every connection
sees them in that order (issue #2 item 9).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from userstream.protocol import wsframes
from userstream.protocol.codec import Deliverable, EncodedEvent, combined_envelope, to_encoded
from userstream.protocol.routes import StreamName


class Subscriber(Protocol):
    """A stream connection as the gateway sees it."""

    @property
    def combined(self) -> bool: ...

    def send_frames(self, frames: list[bytes]) -> None:
        """Queue whole frames, given as byte chunks in order (a frame may span chunks);
        `frames` is shared with other connections, so it is neither kept nor changed."""
        ...


@dataclass(slots=True)
class KeyFilter:
    """What one connection wants of one listenKey: everything (`bare`), or some events."""

    bare: bool = False
    events: set[str] = field(default_factory=set)

    def stream_for(self, listen_key: str, name: str) -> str | None:
        """The `stream` name this event is delivered under, or None if it is filtered out."""
        if name in self.events:
            return f"{listen_key}@{name}"
        if self.bare:
            return listen_key
        return None

    @property
    def empty(self) -> bool:
        return not self.bare and not self.events


class KeyWatcher(Protocol):
    """Told when a listenKey gains its first subscriber here and when it loses its last
    (distributed mode follows the key's account on the bus only while it is watched)."""

    def key_watched(self, listen_key: str) -> None: ...

    def key_unwatched(self, listen_key: str) -> None: ...


class StreamGateway:
    def __init__(self, watcher: KeyWatcher | None = None) -> None:
        """`watcher` (a cluster node) hears when a key gains its first local subscriber and
        loses its last."""
        self._by_key: dict[str, dict[Subscriber, KeyFilter]] = {}
        self.delivered = 0
        self._watcher = watcher
        self.delivered_by_type: dict[str, int] = {}  # frames queued, by event name (/metrics)

    def subscribe(self, subscriber: Subscriber, stream: StreamName) -> None:
        filters = self._by_key.get(stream.listen_key)
        if filters is None:
            filters = self._by_key[stream.listen_key] = {}
            if self._watcher is not None:
                self._watcher.key_watched(stream.listen_key)
        key_filter = filters.setdefault(subscriber, KeyFilter())
        if stream.event is None:
            key_filter.bare = True
        else:
            key_filter.events.add(stream.event)

    def unsubscribe(self, subscriber: Subscriber, stream: StreamName) -> None:
        filters = self._by_key.get(stream.listen_key)
        if filters is None or subscriber not in filters:
            return
        key_filter = filters[subscriber]
        if stream.event is None:
            key_filter.bare = False
        else:
            key_filter.events.discard(stream.event)
        if key_filter.empty:
            del filters[subscriber]
            if not filters:
                self._forget(stream.listen_key)

    def detach(self, subscriber: Subscriber, streams: Iterable[StreamName]) -> None:
        for listen_key in {stream.listen_key for stream in streams}:
            filters = self._by_key.get(listen_key)
            if filters is not None:
                filters.pop(subscriber, None)
                if not filters:
                    self._forget(listen_key)

    def _forget(self, listen_key: str) -> None:
        del self._by_key[listen_key]
        if self._watcher is not None:
            self._watcher.key_unwatched(listen_key)

    def subscribers(self, listen_key: str) -> list[Subscriber]:
        return list(self._by_key.get(listen_key, ()))

    def audience(self, listen_key: str, events: Sequence[EncodedEvent]) -> int:
        """How many connections `deliver` would hand at least one of `events`."""
        filters = self._by_key.get(listen_key)
        if not filters or not events:
            return 0
        # A bare subscription takes every event; the names are only looked at for the others
        # (with one connection per account, usually none).
        wanted: set[str] | None = None
        count = 0
        for key_filter in filters.values():
            if key_filter.bare:
                count += 1
                continue
            if wanted is None:
                wanted = {event.name for event in events}
            if not wanted.isdisjoint(key_filter.events):
                count += 1
        return count

    def deliver(
        self,
        listen_key: str,
        events: Sequence[Deliverable],
        tally: dict[str, int] | None = None,
    ) -> int:
        """Queue `events` on every connection subscribed to `listen_key`; returns frames queued.

        `tally` (events of the batch by name), when the caller counted them already, spares
        the per-type delivered count a pass over the batch.

        `EncodedEvent`s go out as their `raw` bytes; models (the server's listenKeyExpired,
        the simulator's events) are encoded here, once each. Each connection is handed all
        of its frames of the batch in one call.
        """
        filters = self._by_key.get(listen_key)
        if not filters:
            return 0
        # (`to_encoded` is only called for models: the type test inline saves a call per event.)
        encoded = [e if type(e) is EncodedEvent else to_encoded(e) for e in events]
        # Every event's raw frame, joined once: each connection's write would join them
        # anyway, so the batch is copied once rather than once per connection.
        every_raw_frame: list[bytes] | None = None
        raw_frames: dict[int, bytes] = {}
        combined_frames: dict[tuple[int, str], bytes] = {}
        queued = 0
        bare = 0  # connections handed every event of the batch as is
        by_type = self.delivered_by_type
        for subscriber, key_filter in filters.items():
            combined = subscriber.combined
            if key_filter.bare and not combined:
                # The common case: every event, as is.
                if every_raw_frame is None:
                    every_raw_frame = [
                        b"".join(wsframes.text_frame_chunks([e.raw for e in encoded]))
                    ]
                subscriber.send_frames(every_raw_frame)
                queued += len(encoded)
                bare += 1
                continue
            frames: list[bytes] = []
            for index, event in enumerate(encoded):
                stream = key_filter.stream_for(listen_key, event.name)
                if stream is None:
                    continue
                if combined:
                    frame = combined_frames.get((index, stream))
                    if frame is None:
                        frame = wsframes.text_frame(combined_envelope(stream, event.raw))
                        combined_frames[index, stream] = frame
                else:
                    frame = raw_frames.get(index)
                    if frame is None:
                        frame = raw_frames[index] = wsframes.text_frame(event.raw)
                frames.append(frame)
                by_type[event.name] = by_type.get(event.name, 0) + 1
            if frames:
                subscriber.send_frames(frames)
                queued += len(frames)
        if bare:
            if tally is None:
                tally = {}
                for event in encoded:
                    tally[event.name] = tally.get(event.name, 0) + 1
            for name, count in tally.items():
                by_type[name] = by_type.get(name, 0) + count * bare
        self.delivered += queued
        return queued

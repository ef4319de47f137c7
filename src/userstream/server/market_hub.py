"""Fan-out of market frames to stream connections (DESIGN.md rule 3, issue 11 item 3).

Connections are indexed by topic (`protocol.market.MarketStream`); every name a connection
subscribed with is kept, so a combined envelope echoes the name as given. A tick's payloads
are queued with `publish` (each encoded once by the caller) and handed out by `flush` at the
end of the tick: connections with the same subscriptions form a group, whose frames for the
tick are framed and joined once; each connection of the group then gets that one bytes object
in one call. A market connection's cost per tick is therefore one call, however many
messages it receives, and each raw frame is built once, each combined frame once per name.
"""

from __future__ import annotations

from collections.abc import Iterable

from userstream.protocol import wsframes
from userstream.protocol.codec import combined_envelope
from userstream.protocol.market import MarketStream, StreamKind
from userstream.server.gateway import Subscriber

__all__ = ["MarketHub"]

_View = frozenset[tuple[MarketStream, tuple[str, ...]]]


class _Group:
    """Connections with one view: the same names on the same topics."""

    __slots__ = ("names", "subscribers", "view")

    def __init__(self, view: _View) -> None:
        self.view = view
        self.names = dict(view)
        self.subscribers: dict[Subscriber, None] = {}


class MarketHub:
    def __init__(self) -> None:
        self._topics: dict[MarketStream, dict[Subscriber, list[str]]] = {}
        self._by_kind: dict[StreamKind, set[MarketStream]] = {}
        self._mine: dict[Subscriber, dict[MarketStream, list[str]]] = {}
        self._group_of: dict[Subscriber, _Group] = {}
        self._groups: dict[_View, _Group] = {}
        self._dirty: set[Subscriber] = set()
        self._pending: list[tuple[MarketStream, bytes]] = []
        self.delivered = 0  # frames queued (/metrics)

    # subscriptions

    def subscribe(self, subscriber: Subscriber, name: str, topic: MarketStream) -> None:
        subscribers = self._topics.get(topic)
        if subscribers is None:
            subscribers = self._topics[topic] = {}
            self._by_kind.setdefault(topic.kind, set()).add(topic)
        names = subscribers.setdefault(subscriber, [])
        if name not in names:
            names.append(name)
            self._mine.setdefault(subscriber, {})[topic] = names
            self._dirty.add(subscriber)

    def unsubscribe(self, subscriber: Subscriber, name: str, topic: MarketStream) -> None:
        subscribers = self._topics.get(topic)
        if subscribers is None:
            return
        names = subscribers.get(subscriber)
        if names is None or name not in names:
            return
        names.remove(name)
        self._dirty.add(subscriber)
        if not names:
            del subscribers[subscriber]
            del self._mine[subscriber][topic]
            if not subscribers:
                self._forget(topic)

    def detach(self, subscriber: Subscriber, topics: Iterable[MarketStream]) -> None:
        for topic in set(topics):
            subscribers = self._topics.get(topic)
            if subscribers is not None:
                subscribers.pop(subscriber, None)
                if not subscribers:
                    self._forget(topic)
        self._mine.pop(subscriber, None)
        self._dirty.discard(subscriber)
        self._leave_group(subscriber)

    def _forget(self, topic: MarketStream) -> None:
        del self._topics[topic]
        self._by_kind[topic.kind].discard(topic)

    def _leave_group(self, subscriber: Subscriber) -> None:
        group = self._group_of.pop(subscriber, None)
        if group is not None:
            del group.subscribers[subscriber]
            if not group.subscribers:
                del self._groups[group.view]

    def _regroup(self) -> None:
        for subscriber in self._dirty:
            self._leave_group(subscriber)
            mine = self._mine.get(subscriber)
            if not mine:
                continue
            view = frozenset((topic, tuple(names)) for topic, names in mine.items())
            group = self._groups.get(view)
            if group is None:
                group = self._groups[view] = _Group(view)
            group.subscribers[subscriber] = None
            self._group_of[subscriber] = group
        self._dirty.clear()

    # queries

    def active(self, topic: MarketStream) -> bool:
        """True when some connection would receive a frame of `topic`: build it only then."""
        return topic in self._topics

    def subscribers(self, topic: MarketStream) -> int:
        return len(self._topics.get(topic, ()))

    def topics(self, kind: StreamKind) -> list[MarketStream]:
        """The topics of `kind` someone is subscribed to (for the streams built per topic)."""
        return list(self._by_kind.get(kind, ()))

    # delivery

    def publish(self, topic: MarketStream, payload: bytes) -> None:
        """Queue `payload` (one encoded message) for every connection subscribed to `topic`;
        it goes out, in publishing order, at the next `flush`."""
        if topic in self._topics:
            self._pending.append((topic, payload))

    def flush(self) -> int:
        """Hand every queued message to its connections; returns the frames queued."""
        pending = self._pending
        if not pending:
            return 0
        self._pending = []
        if self._dirty:
            self._regroup()
        raw: list[bytes | None] = [None] * len(pending)
        combined: dict[tuple[int, str], bytes] = {}
        queued = 0
        for group in self._groups.values():
            names_of = group.names
            # A group's frames are joined once: every connection of it then queues the same
            # bytes object, so writing it neither copies nor allocates per connection (a
            # tick's fresh block per connection costs page faults at a thousand connections).
            raw_blob: tuple[list[bytes], int] | None = None
            combined_blob: tuple[list[bytes], int] | None = None
            for subscriber in group.subscribers:
                if subscriber.combined:
                    if combined_blob is None:
                        frames: list[bytes] = []
                        for index, (topic, payload) in enumerate(pending):
                            for name in names_of.get(topic, ()):
                                frame = combined.get((index, name))
                                if frame is None:
                                    frame = wsframes.text_frame(combined_envelope(name, payload))
                                    combined[index, name] = frame
                                frames.append(frame)
                        combined_blob = [b"".join(frames)], len(frames)
                    blob, count = combined_blob
                else:
                    if raw_blob is None:
                        frames = []
                        for index, (topic, payload) in enumerate(pending):
                            names = names_of.get(topic)
                            if names:
                                frame = raw[index]
                                if frame is None:
                                    frame = raw[index] = wsframes.text_frame(payload)
                                frames.extend([frame] * len(names))
                        raw_blob = [b"".join(frames)], len(frames)
                    blob, count = raw_blob
                if count:
                    subscriber.send_frames(blob)
                    queued += count
        self.delivered += queued
        return queued

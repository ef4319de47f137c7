"""Fan-out of market frames to stream connections (DESIGN.md rule 3, issue 11 item 3).

Connections are indexed by topic (`protocol.market.MarketStream`); every name a connection
subscribed with is kept, so a combined envelope echoes the name as given. A topic's payload is
encoded once by the caller, its raw frame is built once, each combined frame once per distinct
name, and the same bytes are queued on every subscribed connection.
"""

from __future__ import annotations

from collections.abc import Iterable

from userstream.protocol import wsframes
from userstream.protocol.codec import combined_envelope
from userstream.protocol.market import MarketStream, StreamKind
from userstream.server.gateway import Subscriber

__all__ = ["MarketHub"]


class MarketHub:
    def __init__(self) -> None:
        self._topics: dict[MarketStream, dict[Subscriber, list[str]]] = {}
        self._by_kind: dict[StreamKind, set[MarketStream]] = {}
        self.delivered = 0  # frames queued (/metrics)

    def subscribe(self, subscriber: Subscriber, name: str, topic: MarketStream) -> None:
        subscribers = self._topics.get(topic)
        if subscribers is None:
            subscribers = self._topics[topic] = {}
            self._by_kind.setdefault(topic.kind, set()).add(topic)
        names = subscribers.setdefault(subscriber, [])
        if name not in names:
            names.append(name)

    def unsubscribe(self, subscriber: Subscriber, name: str, topic: MarketStream) -> None:
        subscribers = self._topics.get(topic)
        if subscribers is None:
            return
        names = subscribers.get(subscriber)
        if names is None or name not in names:
            return
        names.remove(name)
        if not names:
            del subscribers[subscriber]
            if not subscribers:
                self._forget(topic)

    def detach(self, subscriber: Subscriber, topics: Iterable[MarketStream]) -> None:
        for topic in set(topics):
            subscribers = self._topics.get(topic)
            if subscribers is not None:
                subscribers.pop(subscriber, None)
                if not subscribers:
                    self._forget(topic)

    def _forget(self, topic: MarketStream) -> None:
        del self._topics[topic]
        self._by_kind[topic.kind].discard(topic)

    def topics(self, kind: StreamKind) -> list[MarketStream]:
        """The topics of `kind` someone is subscribed to (for the streams built per topic)."""
        return list(self._by_kind.get(kind, ()))

    def active(self, topic: MarketStream) -> bool:
        """True when some connection would receive a frame of `topic`: build it only then."""
        return topic in self._topics

    def subscribers(self, topic: MarketStream) -> int:
        return len(self._topics.get(topic, ()))

    def publish(self, topic: MarketStream, payload: bytes) -> int:
        """Queue `payload` (one encoded message) on every connection subscribed to `topic`;
        returns the frames queued."""
        subscribers = self._topics.get(topic)
        if not subscribers:
            return 0
        raw: list[bytes] | None = None
        combined: dict[str, list[bytes]] = {}
        queued = 0
        for subscriber, names in subscribers.items():
            if subscriber.combined:
                for name in names:
                    frame = combined.get(name)
                    if frame is None:
                        frame = combined[name] = [
                            wsframes.text_frame(combined_envelope(name, payload))
                        ]
                    subscriber.send_frames(frame)
            else:
                if raw is None:
                    raw = [wsframes.text_frame(payload)]
                for _ in names:
                    subscriber.send_frames(raw)
            queued += len(names)
        self.delivered += queued
        return queued

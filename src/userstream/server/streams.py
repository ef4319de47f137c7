"""A stream connection: its route, its subscriptions, its control messages and liveness.

Control-message rules live in `protocol.control`; this adapter applies their outcome to the
gateway index and the socket (spec §4.4, §4.5).
"""

from __future__ import annotations

from collections.abc import Callable

from userstream.protocol.control import ControlState, IncomingRateLimit, handle_control
from userstream.protocol.market import MarketStream, is_public, parse_market_stream
from userstream.protocol.routes import Route, RouteKind, StreamName
from userstream.protocol.wsframes import CloseCode, Opcode
from userstream.server.gateway import StreamGateway
from userstream.server.liveness import Liveness, LivenessContext
from userstream.server.market_hub import MarketHub
from userstream.server.websocket import WebSocketConnection


class StreamSession:
    def __init__(
        self,
        route: Route,
        gateway: StreamGateway,
        liveness: LivenessContext,
        on_closed: Callable[[StreamSession], None],
        market: MarketHub | None = None,
        strict_routing: bool = False,
    ) -> None:
        self.route = route
        self._market = market
        self._strict = strict_routing
        self.state = ControlState(
            combined=route.combined, streams={s.name: s for s in route.streams}
        )
        self._gateway = gateway
        self._context = liveness
        self._on_closed = on_closed
        self._rate = IncomingRateLimit()
        self.conn: WebSocketConnection | None = None
        self._liveness: Liveness | None = None

    @property
    def combined(self) -> bool:
        return self.state.combined

    def send_frames(self, frames: list[bytes]) -> None:
        if self.conn is not None:
            self.conn.send_frames(frames)

    def on_open(self, conn: WebSocketConnection) -> None:
        self.conn = conn
        self._liveness = self._context.watch(conn)
        for stream in self.state.streams.values():
            self._subscribe(stream)

    # Market streams are served on every path, user data only where the route delivers it
    # (market-data spec §1: "route nothing — serve every stream on every path"). With
    # `strict_routing` (`serve --strict-routing`) a connection gets only what Binance's 2026
    # routing gives it: `/public` the book streams, `/market` the others, `/private` user
    # data, and an unrouted `/ws` or `/stream` is served as `/public`, so it carries no user
    # data either (user-data spec §4.1: "market and private streams on it silently deliver
    # nothing").
    # Nothing is refused: a stream of the wrong route is accepted in the URL or ACKed by
    # SUBSCRIBE, listed by LIST_SUBSCRIPTIONS, and never delivers (§4.1, "Nothing rejects a
    # route mismatch"; binance-public-data#472, the /ws sockets of 2026-04-23).

    def _routed(self, topic: MarketStream) -> bool:
        if not self._strict:
            return True
        kind = self.route.kind
        if kind is RouteKind.MARKET:
            return not is_public(topic)
        if kind is RouteKind.PUBLIC or kind is RouteKind.LEGACY:
            return is_public(topic)
        return False

    def _delivers_user_data(self) -> bool:
        if self._strict and self.route.kind is RouteKind.LEGACY:
            return False
        return self.route.delivers_user_data

    def _subscribe(self, stream: StreamName) -> None:
        topic = parse_market_stream(stream.name) if self._market is not None else None
        if topic is not None:
            assert self._market is not None
            if self._routed(topic):
                self._market.subscribe(self, stream.name, topic)
        elif self._delivers_user_data():
            self._gateway.subscribe(self, stream)

    def _unsubscribe(self, stream: StreamName) -> None:
        topic = parse_market_stream(stream.name) if self._market is not None else None
        if topic is not None:
            assert self._market is not None
            self._market.unsubscribe(self, stream.name, topic)
        elif self._delivers_user_data():
            self._gateway.unsubscribe(self, stream)

    def _over_rate(self, conn: WebSocketConnection) -> bool:
        """Count one incoming message; True (and the connection closing) when over the limit."""
        if self._rate.allow(self._context.message_time_ms()):
            return False
        conn.close(CloseCode.POLICY_VIOLATION, "too many messages: over 10 per second")
        return True

    def on_message(self, opcode: Opcode, payload: bytes) -> None:
        conn = self.conn
        assert conn is not None
        if self._over_rate(conn):
            return
        outcome = handle_control(payload, self.state)
        for stream in outcome.unsubscribed:
            self._unsubscribe(stream)
        for stream in outcome.subscribed:
            self._subscribe(stream)
        if outcome.reply is not None:
            conn.send_text(outcome.reply)
        if outcome.close:
            conn.close(CloseCode.POLICY_VIOLATION, "invalid JSON")

    # Ping and pong frames are incoming messages too: the USDⓈ-M stream pages limit "incoming
    # messages" (spec §4.5), and Binance's spot page on the same limit says "A message is
    # considered: A PING frame, A PONG frame, A JSON controlled message" (binance-spot-api-docs
    # web-socket-streams.md, "Websocket Limits").

    def on_ping(self, payload: bytes) -> None:
        if self.conn is not None:
            self._over_rate(self.conn)

    def on_pong(self, payload: bytes) -> None:
        if self.conn is None or self._over_rate(self.conn):
            return
        if self._liveness is not None:
            self._liveness.on_pong(payload)

    def on_close(self, code: int, reason: str) -> None:
        if self._liveness is not None:
            self._liveness.stop()
        self._gateway.detach(self, self.state.streams.values())
        if self._market is not None:
            topics = (parse_market_stream(s.name) for s in self.state.streams.values())
            self._market.detach(self, [t for t in topics if t is not None])
        self._on_closed(self)

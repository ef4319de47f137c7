"""The market side: one source of prices per symbol that the venue fills against and that bots
read on Binance's market REST and streams (DESIGN.md, `market/`).

`types` is the seam between the market and its consumers (the venue's engine, the market
streams and REST): a `MarketSource` advanced with `now` returns typed `MarketUpdate`s in the
order they happened, and `book(symbol)` returns the `OrderBook` the engine walks. Everything
here is sans-I/O: no clock reads, no sockets; the server's adapter owns time.
"""

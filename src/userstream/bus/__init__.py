"""Backends behind narrow protocols (`base.py`): embedded (`memory.py`) and NATS JetStream
(`nats/`), and the producer's `Publisher`."""

from userstream.bus.publisher import Publisher

__all__ = ["Publisher"]

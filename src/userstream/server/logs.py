"""What the server logs, and how: secrets shortened, text or one JSON object per line.

Operators read these lines to see why a client gets no events (issue #15 item 6): connections
opened and closed, listenKeys started, kept alive, expired and closed, requests refused. API
keys and listenKeys appear only as their first `PREFIX_CHARS` characters, at most a quarter of
the key (enough to tell keys apart, far too few to use one); secret keys and the admin token
are never passed to a logger.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

PREFIX_CHARS = 8
LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def prefix(secret: str | None) -> str:
    """A key shortened for a log line: `abcd1234…`, or `-` when there is none."""
    if not secret:
        return "-"
    # Never more than a quarter of it, so a short or truncated key is not given away either.
    return secret[: min(PREFIX_CHARS, len(secret) // 4)] + "…"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message (and exc)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, str] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure(level: str, fmt: str = "text") -> None:
    """Log to stderr at `level` (a name such as `info`) as `fmt` (`text` or `json`)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)

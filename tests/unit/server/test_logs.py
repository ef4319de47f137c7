"""Log helpers: keys shortened to a prefix that cannot be used, JSON lines that parse."""

from __future__ import annotations

import json
import logging
import sys

from userstream.server.logs import PREFIX_CHARS, JsonFormatter, prefix


def test_prefix_keeps_only_the_first_characters() -> None:
    key = "A" * PREFIX_CHARS + "secret-part-of-the-key".ljust(56, "x")  # 64, as issued
    assert prefix(key) == "A" * PREFIX_CHARS + "…"
    assert "secret" not in prefix(key)


def test_prefix_of_a_short_or_missing_key_reveals_at_most_a_quarter() -> None:
    assert prefix("abc") == "…"
    assert prefix("abcdefghijkl") == "abc…"
    assert prefix("") == "-"
    assert prefix(None) == "-"


def test_json_formatter_writes_one_parseable_object_per_record() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord(
            "userstream.x",
            logging.ERROR,
            __file__,
            1,
            "failed: %s\nsecond line",
            ("a",),
            sys.exc_info(),
        )
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["level"] == "ERROR"
    assert entry["logger"] == "userstream.x"
    assert entry["message"] == "failed: a\nsecond line"
    assert "ValueError: boom" in entry["exc"]
    assert entry["time"].endswith("+00:00")

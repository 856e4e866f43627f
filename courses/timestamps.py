"""nbgrader's timestamp format, the one place the server writes and reads it.

nbgrader writes ``timestamp.txt`` as ``2026-11-28 03:40:12.123456 UTC`` and parses it back;
every timestamp the service sends out uses exactly this format, in UTC.
"""

from __future__ import annotations

import datetime as dt

TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S.%f %Z"


def format_timestamp(value: dt.datetime | None) -> str | None:
    """A datetime in nbgrader's format, converted to UTC; None stays None."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc).strftime(TIMESTAMP_FORMAT)


def parse_timestamp(raw: str) -> dt.datetime:
    """nbgrader's format or ISO 8601; a time without a zone is taken as UTC.

    Raises ValueError with a sentence when the text is neither.
    """
    text = raw.strip()
    parsed: dt.datetime | None = None
    if text.endswith(" UTC"):
        text = text[: -len(" UTC")]
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        parsed = None
    if parsed is None:
        raise ValueError(
            f"{raw!r} is not a time: use nbgrader's format (2026-11-28 03:40:12.123456 UTC) "
            "or ISO 8601 (2026-11-28T03:40:12Z)."
        )
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    return parsed.astimezone(dt.timezone.utc)

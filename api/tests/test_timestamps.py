"""The server's timestamp format is nbgrader's, and nbgrader reads what the API writes."""

from __future__ import annotations

import datetime as dt

import pytest
from nbgrader.exchange.abc.exchange import Exchange
from nbgrader.utils import parse_utc

from courses.timestamps import TIMESTAMP_FORMAT, format_timestamp, parse_timestamp

WHEN = dt.datetime(2026, 11, 28, 3, 40, 12, 123456, tzinfo=dt.timezone.utc)


def test_format_is_nbgraders_default():
    assert Exchange.timestamp_format.default_value == TIMESTAMP_FORMAT


def test_written_timestamps_are_read_back_by_nbgrader():
    text = format_timestamp(WHEN)
    assert text == "2026-11-28 03:40:12.123456 UTC"
    assert parse_utc(text) == WHEN.replace(tzinfo=None)


def test_other_zones_and_naive_times_go_out_in_utc():
    plus_one = dt.timezone(dt.timedelta(hours=1))
    assert format_timestamp(WHEN.astimezone(plus_one)) == "2026-11-28 03:40:12.123456 UTC"
    assert format_timestamp(WHEN.replace(tzinfo=None)) == "2026-11-28 03:40:12.123456 UTC"
    assert format_timestamp(None) is None


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-28 03:40:12.123456 UTC",
        "2026-11-28T03:40:12.123456Z",
        "2026-11-28T04:40:12.123456+01:00",
        "2026-11-28 03:40:12.123456",
    ],
)
def test_parse_accepts_nbgrader_and_iso(text):
    assert parse_timestamp(text) == WHEN


def test_parse_rejects_other_text_with_a_sentence():
    with pytest.raises(ValueError, match="nbgrader's format"):
        parse_timestamp("tomorrow")

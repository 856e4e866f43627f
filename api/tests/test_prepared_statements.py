"""Prepared statements and an upgrade that changes a column (PostgreSQL).

The service prepares its frequent reads on each database connection
(``EXCHANGE_DB_PREPARED_STATEMENTS``). A migration that changes the type of a column those
reads return (a longer ``max_length``) makes PostgreSQL refuse them on every connection
that prepared them before: "cached plan must not change result type". While an upgrade
rolls out, the pods still running the old version keep such connections. One request on
each gets a 503 that says to try again (which the plugin does), the connection is closed
with its statements, and the next request is answered.
"""

from __future__ import annotations

import pytest
from django.db import connection

pytestmark = [pytest.mark.postgres_only, pytest.mark.django_db(transaction=True)]

URL = "/api/v1/courses/phys101/assignments/ps1/feedback"


def _column_length(length: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f'ALTER TABLE "courses_assignment" ALTER COLUMN "code" TYPE varchar({length})'
        )


def test_a_column_changed_under_prepared_reads_fails_one_request_not_every_one(
    people, feedback, client_for
):
    sam = client_for(people["sam"])
    for _ in range(8):  # prepared after five
        assert sam.get(URL).status_code == 200
    _column_length(101)
    try:
        refused = sam.get(URL)
        assert refused.status_code == 503, refused.content
        assert refused.json()["error"] == "unavailable"
        assert "try again" in refused.json()["detail"].lower()
        assert int(refused["Retry-After"]) <= 2
        again = sam.get(URL)
        assert again.status_code == 200, again.content
        assert again.json()[0]["files"][0]["path"] == "feedback/ps1.html"
    finally:
        _column_length(100)

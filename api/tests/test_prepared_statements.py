"""Prepared statements and an upgrade that changes a column (PostgreSQL).

The service prepares its frequent reads on each database connection
(``EXCHANGE_DB_PREPARED_STATEMENTS``). A migration that changes the type of a column those
reads return (a longer ``max_length``) makes PostgreSQL refuse them on every connection
that prepared them before: "cached plan must not change result type". While an upgrade
rolls out, the pods still running the old version keep such connections. One request in
each worker process gets a 503 that says to try again (which the plugin does); that
connection is closed with its statements, the process's other connections at the start
of their next request, and every request after is answered.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

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
    sam, tia = client_for(people["sam"]), client_for(people["tia"])
    # A second request thread of the same worker, with a database connection of its own.
    with ThreadPoolExecutor(max_workers=1) as other_thread:

        def on_the_other_connection(client):
            return other_thread.submit(client.get, URL).result()

        for _ in range(8):  # prepared after five, on both connections
            assert sam.get(URL).status_code == 200
            assert on_the_other_connection(tia).status_code == 200
        _column_length(101)
        try:
            refused = sam.get(URL)
            assert refused.status_code == 503, refused.content
            assert refused.json()["error"] == "unavailable"
            assert "try again" in refused.json()["detail"].lower()
            assert int(refused["Retry-After"]) <= 2
            # The other connection starts afresh instead of failing a request of its own.
            assert on_the_other_connection(tia).status_code == 200
            again = sam.get(URL)
            assert again.status_code == 200, again.content
            assert again.json()[0]["files"][0]["path"] == "feedback/ps1.html"
        finally:
            other_thread.submit(lambda: connection.close()).result()
            _column_length(100)

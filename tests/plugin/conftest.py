"""One live exchange server for the plugin's tests, and courses with their people on it.

The server is real (gunicorn on 127.0.0.1, its own SQLite and files); people get real API
tokens; each test module makes its own course and people, so modules do not see each other.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness.jsonserver import Answer, JsonServer, script
from tests.harness.live import LiveServer

from .support import MAX_FILE_SIZE, Service


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The plugin never touches the database: its tests run once, in the SQLite pass (the
    live server keeps its own SQLite file whatever DATABASE_URL says)."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.path).parents:
            item.add_marker(pytest.mark.sqlite_only)


@pytest.fixture(scope="session")
def service() -> Iterator[Service]:
    server = LiveServer(env={"EXCHANGE_MAX_FILE_SIZE": str(MAX_FILE_SIZE)})
    with server:
        admin = server.create_api_token("site-admin", staff=True)
        yield Service(server=server, admin_token=admin)


@pytest.fixture
def scripted() -> Iterator[Any]:
    """``scripted(*answers)``: a stand-in server answering each request with the next of
    ``answers`` (a client's retries and error sentences, without a real server's cooperation);
    every one made is stopped after the test."""
    servers: list[JsonServer] = []

    def make(*answers: Answer) -> JsonServer:
        servers.append(JsonServer(script(list(answers))))
        return servers[-1]

    yield make
    for server in servers:
        server.stop()

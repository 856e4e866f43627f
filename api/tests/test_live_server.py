"""The live-server helper itself: gunicorn starts on a free port, answers, and stops."""

from __future__ import annotations

import pytest
import requests

from tests.harness.live import LiveServer

# The server brings its own SQLite database: once per suite is enough.
pytestmark = pytest.mark.sqlite_only


def test_live_server_starts_serves_a_token_and_stops():
    server = LiveServer(workers=1, threads=2)
    with server:
        token = server.create_api_token("ines", staff=True)
        response = requests.get(
            f"{server.api_url}/me", headers={"Authorization": f"token {token}"}, timeout=30
        )
        assert response.status_code == 200
        assert response.json() == {"username": "ines", "is_staff": True, "courses": []}
        process = server.process
        assert process is not None
    assert process.poll() is not None
    assert not server.data_dir.exists()

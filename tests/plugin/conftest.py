"""One live exchange server for the plugin's tests, and courses with their people on it.

The server is real (gunicorn on 127.0.0.1, its own SQLite and files); people get real API
tokens; each test module makes its own course and people, so modules do not see each other.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from api.tests.live import LiveServer

# Small enough that a test can go over it, large enough for notebooks and feedback.
MAX_FILE_SIZE = 2_000_000


@dataclass
class Service:
    """The live server, and how to set up courses on it."""

    server: LiveServer
    admin_token: str

    @property
    def url(self) -> str:
        return self.server.url

    def tokens(self, *usernames: str) -> dict[str, str]:
        """A new API token for each user (created if missing), in one manage.py run."""
        script = (
            "import json; from courses import services; from api.tokens import create_api_token; "
            f"print(json.dumps({{n: create_api_token(user=services.get_or_create_user(n)) "
            f"for n in {list(usernames)!r}}}))"
        )
        output = self.server.manage("shell", "-c", script).stdout
        return json.loads(output.strip().splitlines()[-1])

    def api(self, method: str, path: str, token: str | None = None, **kwargs) -> requests.Response:
        headers = {"Authorization": f"token {token or self.admin_token}"}
        return requests.request(
            method, f"{self.server.api_url}/{path}", headers=headers, timeout=60, **kwargs
        )

    def create_course(self, course_id: str, instructor: str, students: list[str]) -> None:
        created = self.api(
            "POST", "courses", json={"course_id": course_id, "instructors": [instructor]}
        )
        assert created.status_code == 201, created.text
        for student in students:
            added = self.api(
                "PUT", f"courses/{course_id}/members/{student}", json={"role": "student"}
            )
            assert added.status_code in (200, 201), added.text


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

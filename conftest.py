"""Fixtures shared by every test: isolated file storage and the course personas."""

from __future__ import annotations

import os

import pytest

# `make test-s3` sets EXCHANGE_TEST_STORAGE=s3: every test then stores its files on a
# SeaweedFS S3 store (courses/tests/seaweedfs.py) under a prefix of its own.
TEST_STORAGE = os.environ.get("EXCHANGE_TEST_STORAGE", "local")


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory):
    """A SeaweedFS server answering S3 on 127.0.0.1, started once per test session."""
    from courses.tests.seaweedfs import SeaweedFS

    server = SeaweedFS(tmp_path_factory.mktemp("seaweedfs")).start()
    yield server
    server.stop()


@pytest.fixture
def s3_storage(seaweedfs, settings):
    """This test's files on the S3 store, under a prefix no other test uses."""
    from courses.tests.seaweedfs import unique_prefix

    settings.STORAGES = {
        **settings.STORAGES,
        "default": seaweedfs.storage_options(location=unique_prefix()),
    }
    return seaweedfs


@pytest.fixture(autouse=True)
def _isolated_storage(request, settings, tmp_path):
    """Each test stores files in its own directory, never under data/."""
    if TEST_STORAGE == "s3":
        request.getfixturevalue("s3_storage")
    elif settings.STORAGES["default"]["BACKEND"].endswith("FileSystemStorage"):
        settings.STORAGES = {
            **settings.STORAGES,
            "default": {
                "BACKEND": "django.core.files.storage.FileSystemStorage",
                "OPTIONS": {"location": str(tmp_path / "files")},
            },
        }
    yield


@pytest.fixture(autouse=True)
def _no_upload_rate(settings):
    """Tests submit as one student many times a minute; the rate's own tests
    (courses/tests/test_limits.py) set it."""
    settings.EXCHANGE_UPLOADS_PER_MINUTE = 0


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("postgres_only"):
        from django.conf import settings

        if "postgresql" not in settings.DATABASES["default"]["ENGINE"]:
            pytest.skip("needs PostgreSQL (the `make test-postgres` pass runs it)")


class _ThrowawayPostgres:
    """A PostgreSQL cluster started by scripts/throwaway-postgres; new databases on demand."""

    def __init__(self) -> None:
        import subprocess
        import tempfile
        from pathlib import Path

        # Under /tmp, not pytest's private temp dir: the server runs as the postgres user.
        self.directory = Path(tempfile.mkdtemp(prefix="exchange-pg-"))
        os.chmod(self.directory, 0o755)
        self.script = Path(__file__).parent / "scripts" / "throwaway-postgres"
        self.url = subprocess.run(
            [str(self.script), "start", str(self.directory / "pg")],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        self._count = 0

    def create_database(self, prefix: str = "t") -> str:
        """The DATABASE_URL of a new, empty database on this cluster."""
        import psycopg

        self._count += 1
        name = f"{prefix}_{os.getpid()}_{self._count}"
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url.rsplit("/", 1)[0] + "/" + name

    def stop(self) -> None:
        import subprocess

        subprocess.run([str(self.script), "stop", str(self.directory / "pg")], check=False)
        self.directory.rmdir()


@pytest.fixture(scope="session")
def postgres_server():
    """A throwaway PostgreSQL for tests that need one beside the suite's own database."""
    import glob
    import shutil

    if not glob.glob("/usr/lib/postgresql/*/bin/initdb") and not shutil.which("initdb"):
        pytest.skip("PostgreSQL server binaries are not installed")
    server = _ThrowawayPostgres()
    yield server
    server.stop()

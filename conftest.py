"""Fixtures shared by every test: isolated file storage, the shared servers, and the course
personas (the pytest plugin ``tests.harness.personas``)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

pytest_plugins = ["tests.harness.personas"]

# `make test-s3` sets EXCHANGE_TEST_STORAGE=s3: every test then stores its files on a
# SeaweedFS S3 store (tests/harness/seaweedfs.py) under a prefix of its own.
TEST_STORAGE = os.environ.get("EXCHANGE_TEST_STORAGE", "local")


@pytest.fixture(scope="session", autouse=True)
def _temp_directory_of_the_run(tmp_path_factory):
    """What the run's processes put in the temp directory (the servers' lock files and
    preview scratch, Chromium's profiles, ...) goes into one directory of the run's own,
    removed at the end, so a run leaves nothing behind in /tmp (SeaweedFS: its harness).
    pytest's ``tmp_path`` directories stay where pytest keeps them (the last three runs',
    for looking into a failure)."""
    tmp_path_factory.getbasetemp()
    own = Path(tempfile.mkdtemp(prefix="exchange-tests-"))
    # Throwaway PostgreSQL clusters made under it run as postgres (tests/harness/postgres.py).
    own.chmod(0o755)
    saved = os.environ.get("TMPDIR"), tempfile.tempdir
    os.environ["TMPDIR"] = tempfile.tempdir = str(own)
    try:
        yield own
    finally:
        if saved[0] is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = saved[0]
        tempfile.tempdir = saved[1]
        shutil.rmtree(own, ignore_errors=True)


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory):
    """A SeaweedFS server answering S3 on 127.0.0.1, started once per test session."""
    from tests.harness.seaweedfs import SeaweedFS

    server = SeaweedFS(tmp_path_factory.mktemp("seaweedfs")).start()
    yield server
    server.stop()


@pytest.fixture
def s3_storage(seaweedfs, settings, tmp_path_factory):
    """This test's files on the S3 store, under a prefix no other test uses, with a
    temporary directory of its own (uploads being checked, the server's copies of small
    blobs: ``courses.blob_cache``)."""
    from tests.harness.seaweedfs import unique_prefix

    settings.STORAGES = {
        **settings.STORAGES,
        "default": seaweedfs.storage_options(location=unique_prefix()),
    }
    # Not under the test's own tmp_path, whose contents some tests list.
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path_factory.mktemp("server-tmp"))
    return seaweedfs


@pytest.fixture(params=["local", "s3"])
def backend(request):
    """Runs the test once on local files and once on the S3 store: "local" or "s3"."""
    if request.param == "s3":
        request.getfixturevalue("s3_storage")
    return request.param


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


@pytest.fixture(scope="session")
def postgres_server():
    """A throwaway PostgreSQL for tests that need one beside the suite's own database."""
    from tests.harness.postgres import ThrowawayPostgres, available

    if not available():
        pytest.skip("PostgreSQL server binaries are not installed")
    with ThrowawayPostgres() as server:
        yield server

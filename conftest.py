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


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("postgres_only"):
        from django.conf import settings

        if "postgresql" not in settings.DATABASES["default"]["ENGINE"]:
            pytest.skip("needs PostgreSQL (the `make test-postgres` pass runs it)")

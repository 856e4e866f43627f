"""Fixtures shared by every test: isolated file storage and the course personas."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_storage(settings, tmp_path):
    """Each test stores files in its own directory, never under data/."""
    if settings.STORAGES["default"]["BACKEND"].endswith("FileSystemStorage"):
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

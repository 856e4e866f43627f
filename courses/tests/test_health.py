"""The probes: /healthz always answers while the process is up; /readyz checks dependencies."""

from __future__ import annotations

from unittest import mock

import pytest
import tomllib
from django.conf import settings
from django.db.utils import OperationalError


def test_healthz_answers_without_credentials(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    # The release it runs: the version in pyproject.toml, its one source.
    project = tomllib.loads((settings.BASE_DIR / "pyproject.toml").read_text())["project"]
    assert response.json() == {"status": "ok", "version": project["version"]}


@pytest.mark.django_db
def test_readyz_reports_database_and_storage(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "storage": "ok"}


@pytest.mark.django_db
def test_readyz_is_503_when_the_database_is_down(client):
    # Injected failure: the real database cannot be stopped inside this test's transaction.
    with mock.patch("courses.health.connection.cursor", side_effect=OperationalError("down")):
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["database"] == "unavailable"


@pytest.mark.django_db
def test_readyz_names_a_database_that_was_never_migrated(client):
    from django.db import connection

    # The real thing: the table is gone (SQLite's DDL rolls back with the test's transaction;
    # PostgreSQL's too).
    with connection.cursor() as cursor:
        cascade = " CASCADE" if connection.vendor == "postgresql" else ""
        cursor.execute("DROP TABLE courses_course" + cascade)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "database": "not migrated", "storage": "ok"}


@pytest.mark.django_db
def test_readyz_is_503_when_storage_is_down(client):
    with mock.patch("courses.blobstore.get_storage", side_effect=OSError("gone")):
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["storage"] == "unavailable"


def test_probes_refuse_other_methods(client):
    assert client.post("/healthz").status_code == 405

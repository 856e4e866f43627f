"""A dependency that is away (database, file storage) is a 503 with a sentence, never a 500;
other errors are left alone."""

from __future__ import annotations

import errno

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse
from django.test import RequestFactory
from rest_framework.test import APIClient

from courses import selectors
from courses.dependencies import as_unavailable
from courses.exceptions import Unavailable
from exchange_site.errors import DependencyUnavailableMiddleware


def s3_error(status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": "X", "Message": "x"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "PutObject",
    )


@pytest.mark.parametrize(
    ("exc", "words"),
    [
        (OperationalError("connection refused"), "database is unavailable"),
        (InterfaceError("connection already closed"), "database is unavailable"),
        (EndpointConnectionError(endpoint_url="http://s3"), "file storage is unavailable"),
        (s3_error(503), "file storage is unavailable"),
        (OSError(errno.ENOSPC, "No space left on device"), "No space left on device"),
    ],
)
def test_dependency_failures_become_503(exc, words):
    unavailable = as_unavailable(exc)
    assert isinstance(unavailable, Unavailable)
    assert unavailable.status_code == 503
    assert words in unavailable.detail


@pytest.mark.parametrize(
    "exc",
    [s3_error(403), OSError(errno.ENOENT, "gone"), ValueError("x"), ClientError({}, "Get")],
)
def test_other_errors_are_left_alone(exc):
    assert as_unavailable(exc) is None


def test_an_unavailable_error_stays_itself():
    error = Unavailable("JupyterHub did not answer.")
    assert as_unavailable(error) is error


def test_api_answers_503_with_retry_after_when_the_database_fails(db, monkeypatch, people):
    def fail(user):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(selectors, "my_courses", fail)
    client = APIClient()
    client.force_authenticate(people["sam"])
    response = client.get("/api/v1/courses")
    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    assert response.json()["error"] == "unavailable"
    assert "database is unavailable" in response.json()["detail"]


@pytest.mark.parametrize(
    ("path", "content_type"), [("/api/v1/x", "application/json"), ("/admin/", "text/plain")]
)
def test_views_outside_the_api_answer_503_too(path, content_type):
    middleware = DependencyUnavailableMiddleware(lambda request: HttpResponse("ok"))
    request = RequestFactory().get(path)
    assert middleware(request).status_code == 200
    response = middleware.process_exception(request, OperationalError("down"))
    assert response is not None and response.status_code == 503
    assert response["Content-Type"].startswith(content_type)
    assert b"database is unavailable" in response.content
    assert middleware.process_exception(request, ValueError("a bug")) is None


def test_mapping_an_error_does_not_load_botocore_on_local_storage(monkeypatch):
    """A worker on local storage never loaded botocore: telling a 404 or a disk error apart
    must not load it either (about 20 MB per worker)."""
    import sys

    for name in [name for name in sys.modules if name.split(".")[0] == "botocore"]:
        monkeypatch.delitem(sys.modules, name)
    assert as_unavailable(ValueError("not a dependency")) is None
    assert isinstance(as_unavailable(OSError(errno.EIO, "I/O error")), Unavailable)
    assert "botocore.exceptions" not in sys.modules
